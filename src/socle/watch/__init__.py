"""What changed upstream, as it happens: registry push notifications and polling.

- :mod:`~socle.watch.notifications` parses what registries send (pure);
- :mod:`~socle.watch.receiver` is the HTTP endpoint for registries that call back;
- :mod:`~socle.watch.poller` polls tags of registries that cannot.
"""
