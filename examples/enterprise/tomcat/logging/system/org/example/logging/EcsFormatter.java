package org.example.logging;

import java.time.format.DateTimeFormatter;
import java.time.temporal.ChronoUnit;
import java.util.logging.Formatter;
import java.util.logging.Level;
import java.util.logging.LogRecord;

/**
 * One JSON object per line, in Elastic Common Schema names, for EFK.
 *
 * <p>The field names and level words are those of socle's own {@code --events json}, so one
 * index and one Kibana filter read both. Tomcat's JsonFormatter has no logger field and its own
 * names, hence this formatter.
 */
public final class EcsFormatter extends Formatter {
    static final String ECS_VERSION = "8.11.0";

    @Override
    public String format(LogRecord record) {
        StringBuilder json = new StringBuilder(256).append('{');
        field(json, "@timestamp",
                DateTimeFormatter.ISO_INSTANT.format(record.getInstant().truncatedTo(ChronoUnit.MILLIS)));
        field(json, "log.level", level(record.getLevel()));
        field(json, "message", formatMessage(record));
        field(json, "ecs.version", ECS_VERSION);
        field(json, "log.logger", record.getLoggerName());
        json.append("\"process.thread.id\":").append(record.getLongThreadID()).append(',');
        Throwable thrown = record.getThrown();
        if (thrown != null) {
            field(json, "error.type", thrown.getClass().getName());
            field(json, "error.message", thrown.getMessage());
            field(json, "error.stack_trace", stackTrace(thrown));
        }
        json.setLength(json.length() - 1);  // the last comma
        return json.append("}\n").toString();
    }

    /** ECS's usual words: error, warn, info, debug (SEVERE, WARNING, INFO and CONFIG, finer). */
    static String level(Level level) {
        int value = level.intValue();
        if (value >= Level.SEVERE.intValue()) {
            return "error";
        }
        if (value >= Level.WARNING.intValue()) {
            return "warn";
        }
        return value >= Level.CONFIG.intValue() ? "info" : "debug";
    }

    private static void field(StringBuilder json, String name, String value) {
        if (value == null) {
            return;
        }
        json.append('"').append(name).append("\":\"");
        escape(json, value);
        json.append("\",");
    }

    /** JSON string escaping: quotes, backslashes and every control character. */
    static void escape(StringBuilder json, String text) {
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            switch (c) {
                case '"' -> json.append("\\\"");
                case '\\' -> json.append("\\\\");
                case '\n' -> json.append("\\n");
                case '\r' -> json.append("\\r");
                case '\t' -> json.append("\\t");
                default -> {
                    if (c < 0x20 || c == '\u2028' || c == '\u2029') {
                        json.append(String.format("\\u%04x", (int) c));
                    } else {
                        json.append(c);
                    }
                }
            }
        }
    }

    private static String stackTrace(Throwable thrown) {
        java.io.StringWriter out = new java.io.StringWriter();
        thrown.printStackTrace(new java.io.PrintWriter(out));
        return out.toString();
    }
}
