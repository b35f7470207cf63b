"""socle's own OCI distribution client (:mod:`socle.registry.client`) behind the
Protocols of :mod:`socle.registry.interface`.

Nothing is imported here, so reading the interface never loads httpx.
"""
