from __future__ import annotations

import pytest

from socle.errors import InputError
from socle.oci.reference import DEFAULT_REGISTRY as DEFAULT
from socle.oci.reference import Reference

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("debian", DEFAULT, "library/debian", None, None),
        ("debian:12", DEFAULT, "library/debian", "12", None),
        ("team/java:17-debian12", DEFAULT, "team/java", "17-debian12", None),
        (f"{DEFAULT}/debian", DEFAULT, "library/debian", None, None),
        ("localhost/base", "localhost", "base", None, None),
        ("localhost:5000/my/java:17", "localhost:5000", "my/java", "17", None),
        ("127.0.0.1:5000/os/debian:12", "127.0.0.1:5000", "os/debian", "12", None),
        ("registry.example/a/b/c", "registry.example", "a/b/c", None, None),
        (f"127.0.0.1:5000/os/debian@{DIGEST}", "127.0.0.1:5000", "os/debian", None, DIGEST),
        (f"127.0.0.1:5000/os/debian:12@{DIGEST}", "127.0.0.1:5000", "os/debian", "12", DIGEST),
        ("[::1]:5000/os/debian", "[::1]:5000", "os/debian", None, None),
        ("my-registry:80/x__y.z-w", "my-registry:80", "x__y.z-w", None, None),
    ],
)
def test_parse_follows_docker_rules(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    ref = Reference.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        registry,
        repository,
        tag,
        digest,
    )


def test_str_is_canonical_and_parses_back() -> None:
    ref = Reference.parse(f"127.0.0.1:5000/os/debian:12@{DIGEST}")
    assert str(ref) == f"127.0.0.1:5000/os/debian:12@{DIGEST}"
    assert Reference.parse(str(ref)) == ref
    assert str(Reference.parse("debian")) == f"{DEFAULT}/library/debian"


def test_with_tag_and_with_digest_keep_only_that_pin() -> None:
    ref = Reference.parse("127.0.0.1:5000/os/debian:12")
    assert str(ref.with_digest(DIGEST)) == f"127.0.0.1:5000/os/debian@{DIGEST}"
    assert str(ref.with_digest(DIGEST).with_tag("13")) == "127.0.0.1:5000/os/debian:13"
    assert ref.name == "127.0.0.1:5000/os/debian"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Debian",
        "127.0.0.1:5000/OS/debian",
        "debian:",
        "debian:-bad",
        "debian@sha256:short",
        "debian@md5:" + "a" * 64 + "!",
        "a//b",
        "debian:1 2",
        "x/" + "a" * 300,
    ],
)
def test_invalid_references_raise_input_error_naming_them(text: str) -> None:
    with pytest.raises(InputError) as info:
        Reference.parse(text)
    assert repr(text) in info.value.message
    assert info.value.hint


def test_direct_construction_is_validated() -> None:
    with pytest.raises(InputError, match="invalid repository"):
        Reference("127.0.0.1:5000", "UPPER")
