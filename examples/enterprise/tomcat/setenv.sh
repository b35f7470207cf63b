# Sourced by catalina.sh: the JSON logging classes must be on the system class
# path, because the log manager reads logging.properties before Tomcat's own
# class loaders exist.
CLASSPATH=/usr/share/tomcat10/bin/json-logging.jar
