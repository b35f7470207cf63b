// socle console: append a running run's events as they are recorded (server-sent events).
(function () {
  "use strict";
  var log = document.getElementById("log");
  if (!log || !log.dataset.events || !window.EventSource) { return; }
  var status = document.getElementById("run-status");
  var summary = document.getElementById("run-summary");
  var source = new EventSource(log.dataset.events);
  source.addEventListener("progress", function (message) {
    var event = JSON.parse(message.data);
    if (log.querySelector('[data-event="' + event.id + '"]')) { return; }
    var item = document.createElement("li");
    item.className = "event " + event.status + " fresh";
    item.dataset.event = String(event.id);
    item.textContent = event.line;
    log.appendChild(item);
    item.scrollIntoView({block: "nearest"});
  });
  source.addEventListener("end", function (message) {
    var end = JSON.parse(message.data);
    source.close();
    if (status) { status.textContent = end.status; status.className = "run-status " + end.status; }
    if (summary) { summary.textContent = end.summary || "—"; }
    log.dataset.ended = end.status;
    window.setTimeout(function () { window.location.reload(); }, 1500);
  });
})();
