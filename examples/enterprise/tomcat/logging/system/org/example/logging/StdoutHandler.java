package org.example.logging;

import java.util.logging.LogRecord;
import java.util.logging.StreamHandler;

/**
 * Every record to stdout as an ECS JSON line, flushed at once.
 *
 * <p>The JDK's ConsoleHandler writes to stderr; a container's log collector reads stdout, and
 * an unflushed line is lost when the pod is killed.
 */
public final class StdoutHandler extends StreamHandler {
    public StdoutHandler() {
        super(System.out, new EcsFormatter());
    }

    @Override
    public synchronized void publish(LogRecord record) {
        super.publish(record);
        flush();
    }

    /** Flush, but never close the process's stdout. */
    @Override
    public synchronized void close() {
        flush();
    }
}
