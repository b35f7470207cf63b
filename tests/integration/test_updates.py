"""Pending security updates, for real: two bookworm bootstraps checked with buildah.

An image bootstrapped from the main suite only lags the security archive (perl,
apt, xz... on any given day); the same image bootstrapped with the security
suite has nothing pending. apt in the throw-away container reaches the
host-configured mirror through host networking, as builds do.
"""

from __future__ import annotations

import secrets
import shutil
import time
from collections.abc import Iterator

import pytest

from socle.bootstrap.mmdebstrap import bootstrap
from socle.bootstrap.spec import BootstrapSpec
from socle.builders import BUILDERS, Builder
from socle.errors import SocleError
from socle.updates import SECURITY_LABELS, pending_security_updates
from tests.integration.conftest import Bootstrapped

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def buildah() -> Builder:
    for tool in ("buildah", "mmdebstrap"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed: run `make setup` (or .ci/run) first")
    return BUILDERS["buildah"]()


def _bootstrapped(
    builder: Builder, tmp_path_factory: pytest.TempPathFactory, *, security: bool
) -> Iterator[str]:
    root = tmp_path_factory.mktemp("main-only")
    result = bootstrap(BootstrapSpec("bookworm", security=security), root / "layout")
    name = f"localhost/socle-test/updates-{secrets.token_hex(4)}:12"
    builder.load(result.layout, name)
    yield name
    builder.remove(name)


@pytest.fixture(scope="module")
def main_only(buildah: Builder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """bookworm minbase from the main suite only: behind the security archive."""
    yield from _bootstrapped(buildah, tmp_path_factory, security=False)


@pytest.fixture(scope="module")
def patched(buildah: Builder, debian_bookworm: Bootstrapped) -> Iterator[str]:
    """bookworm minbase with -updates and -security (the session's bootstrap): current."""
    name = f"localhost/socle-test/updates-{secrets.token_hex(4)}:12"
    buildah.load(debian_bookworm.result.layout, name)
    yield name
    buildah.remove(name)


def test_an_image_without_the_security_suite_has_pending_updates(
    buildah: Builder, main_only: str
) -> None:
    started = time.monotonic()
    pending = pending_security_updates(buildah, main_only)
    elapsed = time.monotonic() - started
    print(f"\n{len(pending)} pending in {elapsed:.1f} s:", *map(str, pending), sep="\n  ")

    assert pending, "the security archive always has something newer than the point release"
    installed = dict(
        line.split(" ", 1)
        for line in buildah.run(
            main_only, ["dpkg-query", "-W", "-f", "${Package} ${Version}\\n"]
        ).stdout.splitlines()
    )
    for update in pending:
        assert installed[update.package.partition(":")[0]] == update.installed
        assert update.candidate != update.installed
        assert update.origin.partition(":")[0] in SECURITY_LABELS


def test_an_image_with_the_security_suite_has_none(buildah: Builder, patched: str) -> None:
    assert pending_security_updates(buildah, patched) == []


def test_an_unreachable_mirror_is_an_error_not_an_empty_list(
    buildah: Builder, main_only: str
) -> None:
    sources = "deb http://127.0.0.1:9/debian bookworm main\n"

    with pytest.raises(SocleError) as caught:
        pending_security_updates(buildah, main_only, sources=sources)

    assert "could not update its package lists" in caught.value.message
    assert "127.0.0.1:9" in caught.value.message
