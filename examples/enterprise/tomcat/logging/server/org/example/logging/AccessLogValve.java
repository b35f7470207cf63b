package org.example.logging;

import java.io.CharArrayWriter;
import java.util.logging.Logger;
import org.apache.catalina.valves.AbstractAccessLogValve;

/**
 * Tomcat's access log as log records, so the access lines reach stdout as ECS JSON beside the
 * server's own (logger {@code org.example.logging.AccessLogValve}, level info, the access line
 * in {@code message}). Tomcat's JsonAccessLogValve writes a file, with no level, logger or
 * message.
 */
public final class AccessLogValve extends AbstractAccessLogValve {
    private static final Logger ACCESS = Logger.getLogger(AccessLogValve.class.getName());

    @Override
    protected void log(CharArrayWriter message) {
        ACCESS.info(message.toString());
    }
}
