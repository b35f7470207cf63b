package org.example.legacy;

import jakarta.servlet.annotation.WebServlet;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.io.PrintWriter;
import java.lang.management.ManagementFactory;

/** The JVM's uptime and heap in Prometheus' text format, for the deployment's scrape. */
@WebServlet("/metrics")
public class MetricsServlet extends HttpServlet {
    @Override
    protected void doGet(HttpServletRequest request, HttpServletResponse response) throws IOException {
        response.setContentType("text/plain; version=0.0.4; charset=UTF-8");
        PrintWriter out = response.getWriter();
        Runtime runtime = Runtime.getRuntime();
        out.println("# TYPE legacy_uptime_seconds gauge");
        out.println("legacy_uptime_seconds " + ManagementFactory.getRuntimeMXBean().getUptime() / 1000.0);
        out.println("# TYPE legacy_heap_used_bytes gauge");
        out.println("legacy_heap_used_bytes " + (runtime.totalMemory() - runtime.freeMemory()));
    }
}
