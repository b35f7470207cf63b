"""One keep-alive HTTP/1.1 connection that speaks just enough for plain manifest answers.

`http.client` spends about 0.3 ms of CPU per answer (a file object per
response, the `email` header parser); on two cores that is CPU the registry
itself needs, and it showed as 20-25% of a 1,000-HEAD batch. A manifest HEAD or
GET needs none of that: one request line, a status, a few headers and a body
of a known length. Anything else (chunked bodies, 1xx answers, oversized
headers) raises :class:`Unusual`, and the caller hands the request to httpx.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ssl

MAX_HEADER = 64 << 10
MAX_BODY = 4 << 20  # distribution refuses manifests above 4 MiB
TIMEOUT = 30.0


class Unusual(Exception):
    """An answer this lean path does not read; the full path will."""


Answer = tuple[int, dict[str, str], bytes]


class Wire:
    """A reusable connection to one registry (`scheme`, `netloc`); one thread at a time."""

    def __init__(
        self, netloc: str, host: str, port: int, tls: ssl.SSLContext | None = None
    ) -> None:
        """`netloc` goes in the Host header; `tls` wraps the socket (https)."""
        self._netloc, self._host, self._port, self._tls = netloc, host, port, tls
        self._sock: socket.socket | None = None
        self._buffer = b""

    def exchange(self, method: str, path: str, accept: str) -> Answer:
        """Send one request and read its answer; a connection the server closed is reopened once."""
        if self._sock is not None:
            try:
                return self._exchange(method, path, accept)
            except (_Closed, BrokenPipeError, ConnectionResetError):
                self.close()  # the server dropped an idle keep-alive connection: HEAD/GET again
        try:
            return self._exchange(method, path, accept)
        except _Closed as exc:
            self.close()
            raise ConnectionResetError("the registry closed the connection") from exc

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock, self._buffer = None, b""

    def _open(self) -> socket.socket:
        # A str host goes through the idna codec (5 ms to import, with stringprep);
        # an ASCII name or address needs no encoding.
        host: str | bytes = self._host.encode("ascii") if self._host.isascii() else self._host
        # getaddrinfo takes bytes; typeshed's create_connection says str only.
        sock = socket.create_connection((host, self._port), timeout=TIMEOUT)  # type: ignore[arg-type]
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._tls is not None:
            sock = self._tls.wrap_socket(sock, server_hostname=self._host)
        return sock

    def _exchange(self, method: str, path: str, accept: str) -> Answer:
        if self._sock is None:
            self._sock = self._open()
        request = (
            f"{method} {path} HTTP/1.1\r\nHost: {self._netloc}\r\nAccept: {accept}\r\n"
            "User-Agent: socle\r\n\r\n"
        )
        self._sock.sendall(request.encode("latin-1"))
        head = self._until(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/1.") or not code.isdigit():
            raise Unusual(f"status line {lines[0][:80]!r}")
        status = int(code)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        connection = headers.get("connection", "").lower()
        closing = connection == "close" or (version == "HTTP/1.0" and connection != "keep-alive")
        body = b"" if method == "HEAD" else self._body(status, headers, closing)
        if closing:
            self.close()
        return status, headers, body

    def _body(self, status: int, headers: dict[str, str], closing: bool) -> bytes:
        if status < 200:
            raise Unusual(f"status {status}")
        if status in (204, 304):
            return b""
        if "transfer-encoding" in headers:
            raise Unusual("a chunked body")
        length = headers.get("content-length", "")
        if length.isascii() and length.isdigit():
            if int(length) > MAX_BODY:
                raise Unusual(f"a body of {length} bytes")
            return self._exactly(int(length))
        if not closing:
            raise Unusual("a body of no announced length")
        return self._rest()

    def _until(self, marker: bytes) -> bytes:
        while (end := self._buffer.find(marker)) < 0:
            if len(self._buffer) > MAX_HEADER:
                raise Unusual("oversized headers")
            self._fill(started=bool(self._buffer))
        head, self._buffer = self._buffer[:end], self._buffer[end + len(marker) :]
        return head

    def _exactly(self, size: int) -> bytes:
        while len(self._buffer) < size:
            self._fill(started=True)
        body, self._buffer = self._buffer[:size], self._buffer[size:]
        return body

    def _rest(self) -> bytes:
        assert self._sock is not None
        while chunk := self._sock.recv(1 << 16):
            self._buffer += chunk
            if len(self._buffer) > MAX_BODY:
                raise Unusual("an oversized body")
        body, self._buffer = self._buffer, b""
        return body

    def _fill(self, *, started: bool) -> None:
        assert self._sock is not None
        chunk = self._sock.recv(1 << 16)
        if not chunk:
            if started:
                raise ConnectionResetError("the registry closed the connection mid-answer")
            raise _Closed
        self._buffer += chunk


class _Closed(Exception):
    """The server closed the connection before answering."""
