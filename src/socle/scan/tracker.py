"""Load the Debian Security Tracker's JSON export from a file or a URL, with a disk cache.

A URL is fetched with httpx into `$XDG_CACHE_HOME/socle/debian-tracker/`,
beside a small record of when it was fetched (and its ETag). A cache younger
than `max_age` is used as is; an older one is revalidated; when the URL cannot
be reached, the cache is used anyway and the snapshot carries a warning that
names its date. No URL is built in: the user names the source (`--db`, or the
environment), so nothing here depends on one host.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from socle import atomic
from socle.scan.interface import ScanError

if TYPE_CHECKING:  # httpx: imported to download, not by every build that sets up the scan
    import httpx

SOURCE_ENV = "SOCLE_DEBIAN_TRACKER"
SOURCE_HINT = (
    f"pass --db FILE|URL or set {SOURCE_ENV} to the Debian Security Tracker's JSON export "
    "(its /tracker/data/json page) or to a mirror or copy of it"
)
DEFAULT_MAX_AGE = timedelta(hours=6)
TIMEOUT = 120.0  # seconds per download; connecting: CONNECT_TIMEOUT
CONNECT_TIMEOUT = 10.0
CHUNK_SIZE = 1 << 20


@dataclass(frozen=True)
class TrackerSnapshot:
    """The tracker data, where it came from and when it was fetched."""

    source: str
    fetched: datetime
    data: Mapping[str, Any]
    warnings: tuple[str, ...] = ()


def default_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """`$XDG_CACHE_HOME/socle`, or `~/.cache/socle`."""
    env = os.environ if env is None else env
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "socle"


def load_tracker(
    source: str,
    *,
    cache_dir: Path | None = None,
    client: httpx.Client | None = None,
    max_age: timedelta = DEFAULT_MAX_AGE,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> TrackerSnapshot:
    """The tracker data at `source`: an http(s) URL (cached), a file:// URL or a path."""
    scheme = urlparse(source).scheme
    if scheme in ("http", "https"):
        cache = _Cache(cache_dir or default_cache_dir(), source)
        return _Fetch(source, cache, client, max_age, now()).snapshot()
    path = Path(unquote(urlparse(source).path)) if scheme == "file" else Path(source)
    try:
        data = path.read_bytes()
        fetched = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ScanError(
            f"cannot read the tracker data {path}: {reason}", hint=SOURCE_HINT
        ) from None
    return TrackerSnapshot(str(path), fetched, parse_tracker(data, str(path)))


def parse_tracker(data: bytes, source: str) -> Mapping[str, Any]:
    """The JSON object `{source package: {issue: {...}}}`; :class:`ScanError` otherwise."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, or nested too deep
        raise ScanError(f"{source} is not JSON: {exc}", hint=SOURCE_HINT) from None
    if not isinstance(doc, dict):
        raise ScanError(f"{source} is not tracker data (expected a JSON object)", hint=SOURCE_HINT)
    return doc


class _Cache:
    """One cached download: the data file and its metadata record."""

    def __init__(self, root: Path, url: str) -> None:
        key = hashlib.sha256(url.encode()).hexdigest()[:16]
        self.folder = root / "debian-tracker"
        self.data = self.folder / f"{key}.json"
        self.meta = self.folder / f"{key}.meta.json"

    def record(self) -> dict[str, str] | None:
        try:
            meta = json.loads(self.meta.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict) or "fetched" not in meta or not self.data.exists():
            return None
        return {str(k): str(v) for k, v in meta.items()}

    def write_record(self, record: Mapping[str, str]) -> None:
        atomic.write_text(self.meta, json.dumps(dict(record)))


class _Fetch:
    """Fetching one URL through its cache."""

    def __init__(
        self,
        url: str,
        cache: _Cache,
        client: httpx.Client | None,
        max_age: timedelta,
        now: datetime,
    ) -> None:
        self.url, self.cache, self.client, self.max_age, self.now = url, cache, client, max_age, now

    def snapshot(self) -> TrackerSnapshot:
        record = self.cache.record()
        if record and self.now - _date(record) < self.max_age:
            return self._from_cache(record)
        import httpx

        try:
            record, data = self._download(record)
        except (httpx.HTTPError, OSError, ScanError) as exc:
            if record is None:
                if isinstance(exc, ScanError):
                    raise
                reason = _reason(exc)
                raise ScanError(
                    f"cannot fetch the tracker data {self.url}: {reason}", hint=SOURCE_HINT
                ) from None
            stale = f"{_date(record):%Y-%m-%d %H:%M} UTC"
            warning = f"could not refresh {self.url} ({_reason(exc)}); using data fetched {stale}"
            return self._from_cache(record, (warning,))
        if data is None:
            return self._from_cache(record)
        return TrackerSnapshot(self.url, _date(record), data)

    def _from_cache(
        self, record: dict[str, str], warnings: tuple[str, ...] = ()
    ) -> TrackerSnapshot:
        data = parse_tracker(self.cache.data.read_bytes(), self.url)
        return TrackerSnapshot(self.url, _date(record), data, warnings)

    def _download(
        self, record: dict[str, str] | None
    ) -> tuple[dict[str, str], Mapping[str, Any] | None]:
        """The new record, and the data when new data arrived (None: the cache is current)."""
        headers = {}
        if record and record.get("etag"):
            headers["If-None-Match"] = record["etag"]
        if record and record.get("last_modified"):
            headers["If-Modified-Since"] = record["last_modified"]
        import httpx

        timeout = httpx.Timeout(TIMEOUT, connect=CONNECT_TIMEOUT)
        client = self.client or httpx.Client(timeout=timeout, follow_redirects=True)
        data = None
        try:
            with client.stream("GET", self.url, headers=headers) as response:
                if response.status_code == 304 and record:
                    fresh = {**record, "fetched": self.now.isoformat()}
                else:
                    response.raise_for_status()
                    data = self._save(response)
                    fresh = {
                        "url": self.url,
                        "fetched": self.now.isoformat(),
                        "etag": response.headers.get("ETag", ""),
                        "last_modified": response.headers.get("Last-Modified", ""),
                    }
        finally:
            if self.client is None:
                client.close()
        self.cache.write_record(fresh)
        return fresh, data

    def _save(self, response: httpx.Response) -> Mapping[str, Any]:
        """Stream the body to the cache; a body that is not tracker data is not kept."""
        self.cache.folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self.cache.folder, delete=False) as tmp:
            try:
                for chunk in response.iter_bytes(CHUNK_SIZE):
                    tmp.write(chunk)
                tmp.flush()
                data = parse_tracker(Path(tmp.name).read_bytes(), self.url)
            except BaseException:
                os.unlink(tmp.name)
                raise
        atomic.move_into_place(tmp.name, self.cache.data)
        return data


def _date(record: Mapping[str, str]) -> datetime:
    try:
        return datetime.fromisoformat(record["fetched"])
    except (KeyError, ValueError):
        return datetime.min.replace(tzinfo=UTC)


def _reason(exc: Exception) -> str:
    import httpx

    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    return str(exc) or type(exc).__name__
