"""Image references (`registry/repository[:tag][@digest]`) parsed with docker's rules."""

from __future__ import annotations

import re
from dataclasses import dataclass

from socle.errors import InputError

# The registry docker assumes when a name has no registry component.
DEFAULT_REGISTRY = "docker.io"
OFFICIAL_NAMESPACE = "library"
MAX_NAME_LENGTH = 255

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_HOST = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*"
_REGISTRY = re.compile(rf"(?:{_HOST}|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?")
_TAG = re.compile(r"\w[\w.-]{0,127}", re.ASCII)
_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}")
_HEX_LENGTHS = {"sha256": 64, "sha512": 128}


@dataclass(frozen=True)
class Reference:
    """A parsed image reference; `tag` and `digest` may both be absent (a bare repository)."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    def __post_init__(self) -> None:
        problem = _problem(self.registry, self.repository, self.tag, self.digest)
        if problem:
            raise InputError(f"invalid image reference {str(self)!r}: {problem}", hint=_HINT)

    @classmethod
    def parse(cls, text: str) -> Reference:
        """Parse `text` like docker does; raise :class:`InputError` naming it when invalid."""
        rest, digest = _split_digest(text.strip())
        rest, tag = _split_tag(rest)
        registry, repository = _split_registry(rest)
        problem = _problem(registry, repository, tag, digest)
        if problem:
            raise InputError(f"invalid image reference {text!r}: {problem}", hint=_HINT)
        return cls(registry, repository, tag, digest)

    @property
    def name(self) -> str:
        """`registry/repository`, without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def pin(self) -> str | None:
        """What the registry's manifest endpoint is asked for: the digest, else the tag."""
        return self.digest or self.tag

    def with_tag(self, tag: str) -> Reference:
        """The same repository at `tag` (any digest dropped)."""
        return Reference(self.registry, self.repository, tag=tag)

    def with_digest(self, digest: str) -> Reference:
        """The same repository at `digest` (any tag dropped)."""
        return Reference(self.registry, self.repository, digest=digest)

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


_HINT = "expected [registry/]repository[:tag][@sha256:<64 hex>], repository in lower case"


def _split_digest(text: str) -> tuple[str, str | None]:
    if "@" not in text:
        return text, None
    rest, digest = text.rsplit("@", 1)
    return rest, digest


def _split_tag(text: str) -> tuple[str, str | None]:
    head, _, last = text.rpartition("/")
    if ":" not in last:
        return text, None
    last, tag = last.split(":", 1)
    return (f"{head}/{last}" if head else last), tag


def _split_registry(text: str) -> tuple[str, str]:
    first, sep, rest = text.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, rest
    else:
        registry, repository = DEFAULT_REGISTRY, text
    if registry == DEFAULT_REGISTRY and repository and "/" not in repository:
        repository = f"{OFFICIAL_NAMESPACE}/{repository}"
    return registry, repository


def _problem(registry: str, repository: str, tag: str | None, digest: str | None) -> str | None:
    """What is wrong with these components, or None."""
    if not _REGISTRY.fullmatch(registry):
        return f"invalid registry {registry!r}"
    if not _REPOSITORY.fullmatch(repository):
        return f"invalid repository {repository!r} (lower case, digits and . _ - separators)"
    if len(registry) + 1 + len(repository) > MAX_NAME_LENGTH:
        return f"name longer than {MAX_NAME_LENGTH} characters"
    if tag is not None and not _TAG.fullmatch(tag):
        return f"invalid tag {tag!r}"
    if digest is not None and not is_digest(digest):
        return f"invalid digest {digest!r}"
    return None


def is_digest(digest: str) -> bool:
    """True for a well-formed `algorithm:encoded` digest (hex of the right length for sha256/512)."""
    algorithm, _, encoded = digest.partition(":")
    if not _DIGEST.fullmatch(digest):
        return False
    length = _HEX_LENGTHS.get(algorithm)
    return length is None or re.fullmatch(rf"[a-f0-9]{{{length}}}", encoded) is not None


def registry_host_problem(host: str) -> str | None:
    """What is wrong with `host` as a registry's host[:port], with the fix; None when nothing.

    The text follows the value (`registry 'X' is a URL: ...`). A URL or a path
    would give references no client can pull (`http://127.0.0.1:5000/my/java:17`),
    so they are refused where they are read, not when a push fails.
    """
    _, scheme, rest = host.partition("://")
    if scheme:
        bare = rest.split("/", 1)[0] or "HOST[:PORT]"
        return f"is a URL: write {bare}, without the scheme"
    bare, slash, _ = host.partition("/")
    if slash and _REGISTRY.fullmatch(bare):
        return f"has a path: write {bare}, and put the path in the catalog's `namespace`"
    if not _REGISTRY.fullmatch(host):
        return "is not a host[:port] (such as 127.0.0.1:5000)"
    return None


def check_digest(digest: str) -> str:
    """Return `digest` if well-formed; raise :class:`InputError` naming it otherwise."""
    if not is_digest(digest):
        raise InputError(f"invalid digest {digest!r}", hint="expected sha256:<64 hex digits>")
    return digest
