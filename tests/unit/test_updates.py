from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from socle.builders.buildah import run_command as buildah_run_command
from socle.builders.docker import run_command as docker_run_command
from socle.builders.interface import BuildRequest, BuildResult, RunResult
from socle.errors import InputError, SocleError
from socle.updates import (
    PendingUpdate,
    image_codename,
    parse_simulation,
    pending_security_updates,
    security_sources,
)

# Written by hand after real `apt-get -s upgrade` output: bookworm's security suite
# under both of its labels' suite names, a candidate offered by the point release
# and the security archive at once, point-release-only updates, an Ubuntu security
# line, a new install, and the Conf lines that repeat Inst.
SIMULATION = """\
Reading package lists...
Building dependency tree...
Reading state information...
Calculating upgrade...
The following packages will be upgraded:
  base-files libgcrypt20 liblzma5 perl-base tzdata
Inst base-files [12.4+deb12u11] (12.4+deb12u15 Debian:12.15/oldstable [amd64])
Conf base-files (12.4+deb12u15 Debian:12.15/oldstable [amd64])
Inst libgcrypt20 [1.10.1-3] (1.10.1-3+deb12u1 Debian:12.15/oldstable, Debian-Security:12/oldstable-security [amd64])
Inst liblzma5 [5.4.1-1] (5.4.1-1+deb12u2 Debian-Security:12/oldstable-security [amd64]) []
Inst perl-base [5.36.0-7+deb12u1] (5.36.0-7+deb12u2 Debian-Security:12/stable-security [amd64])
Inst tzdata [2024a-0+deb12u1] (2025b-0+deb12u1 Debian:12.11/stable-updates [all])
Inst libc6:i386 [2.36-9+deb12u9] (2.36-9+deb12u10 Debian-Security:12/oldstable-security [i386])
Inst libssl3 [3.0.2-0ubuntu1.15] (3.0.2-0ubuntu1.18 Ubuntu:22.04/jammy-security [amd64])
Inst newdep (1.0-1 Debian-Security:12/oldstable-security [amd64])
Conf liblzma5 (5.4.1-1+deb12u2 Debian-Security:12/oldstable-security [amd64])
Conf perl-base (5.36.0-7+deb12u2 Debian-Security:12/stable-security [amd64])
"""


def test_security_updates_are_selected_by_label_not_suite() -> None:
    assert parse_simulation(SIMULATION) == [
        PendingUpdate(
            "libc6:i386",
            "2.36-9+deb12u9",
            "2.36-9+deb12u10",
            "Debian-Security:12/oldstable-security",
        ),
        PendingUpdate(
            "libgcrypt20", "1.10.1-3", "1.10.1-3+deb12u1", "Debian-Security:12/oldstable-security"
        ),
        PendingUpdate(
            "liblzma5", "5.4.1-1", "5.4.1-1+deb12u2", "Debian-Security:12/oldstable-security"
        ),
        PendingUpdate(
            "perl-base",
            "5.36.0-7+deb12u1",
            "5.36.0-7+deb12u2",
            "Debian-Security:12/stable-security",
        ),
    ]


def test_other_security_labels_can_be_asked_for() -> None:
    found = parse_simulation(SIMULATION, labels=frozenset({"Ubuntu"}))
    assert [u.package for u in found] == ["libssl3"]


def test_nothing_to_upgrade_is_an_empty_list() -> None:
    assert parse_simulation("0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.") == []


def test_a_pending_update_reads_like_apt() -> None:
    update = PendingUpdate("perl-base", "1", "2", "Debian-Security:12/oldstable-security")
    assert str(update) == "perl-base 1 -> 2 (Debian-Security:12/oldstable-security)"


class FakeBuilder:
    """Answers `run` from a queue of results and records what it was asked."""

    name = "fake"

    def __init__(self, *results: RunResult) -> None:
        self.results = list(results)
        self.calls: list[tuple[str, list[str], str | None, str]] = []

    def build(self, request: BuildRequest) -> BuildResult:
        raise NotImplementedError

    def load(self, layout: Path, name: str) -> None:
        raise NotImplementedError

    def remove(self, *names: str) -> None:
        raise NotImplementedError

    def run(
        self,
        name: str,
        command: Sequence[str],
        *,
        user: str | None = None,
        network: str = "none",
    ) -> RunResult:
        self.calls.append((name, list(command), user, network))
        return self.results.pop(0)


SOURCES = "deb http://127.0.0.1:9/debian bookworm main\n"


def test_the_simulation_runs_as_root_with_host_network_and_the_given_sources() -> None:
    builder = FakeBuilder(RunResult(0, SIMULATION, ""))

    found = pending_security_updates(builder, "my/debian:12", sources=SOURCES)

    assert [u.package for u in found] == ["libc6:i386", "libgcrypt20", "liblzma5", "perl-base"]
    ((name, command, user, network),) = builder.calls
    assert (name, user, network) == ("my/debian:12", "0", "host")
    assert command[:2] == ["sh", "-c"]
    assert "apt-get -s upgrade" in command[2] and "apt-get update" in command[2]
    assert command[-1] == SOURCES


def test_without_sources_the_host_sources_of_the_image_release_are_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[str] = []

    def host_sources(suite: str) -> str:
        asked.append(suite)
        return SOURCES

    monkeypatch.setattr("socle.updates.security_sources", host_sources)
    builder = FakeBuilder(RunResult(0, "bookworm\n", ""), RunResult(0, SIMULATION, ""))

    assert len(pending_security_updates(builder, "my/debian:12")) == 4
    assert asked == ["bookworm"]
    (_, codename, _, codename_network), (_, check, _, _) = builder.calls
    assert "/etc/os-release" in codename[2]
    assert codename_network == "none", "reading os-release needs no network"
    assert check[-1] == SOURCES


def test_security_sources_come_from_the_host_apt_configuration(tmp_path: Path) -> None:
    apt = tmp_path / "apt"
    (apt / "sources.list.d").mkdir(parents=True)
    (apt / "sources.list").write_text(
        "deb http://127.0.0.1:9/debian bookworm main\n"
        "deb http://127.0.0.1:9/debian bookworm-updates main\n"
        "deb http://127.0.0.1:9/debian-security bookworm-security main\n"
        "deb http://127.0.0.1:9/debian trixie main\n"
    )
    assert security_sources("bookworm", apt_dir=apt).splitlines() == [
        "deb http://127.0.0.1:9/debian bookworm main",
        "deb http://127.0.0.1:9/debian bookworm-updates main",
        "deb http://127.0.0.1:9/debian-security bookworm-security main",
    ]


def test_an_image_without_codename_is_explained() -> None:
    builder = FakeBuilder(RunResult(0, "\n", ""))
    with pytest.raises(SocleError, match="which Debian release") as caught:
        image_codename(builder, "my/distroless:1")
    assert builder.calls[0][0] == "my/distroless:1"
    assert caught.value.hint


def test_security_sources_from_a_mirror_add_the_security_archive() -> None:
    text = security_sources("bookworm", mirror="http://127.0.0.1:9/debian")
    assert text.splitlines() == [
        "deb http://127.0.0.1:9/debian bookworm main",
        "deb http://127.0.0.1:9/debian bookworm-updates main",
        "deb http://127.0.0.1:9/debian-security bookworm-security main",
    ]


APT_UNREACHABLE = (
    "E: Failed to fetch http://127.0.0.1:9/debian/dists/bookworm/InRelease  "
    "Could not connect to 127.0.0.1:9 (127.0.0.1). - connect (111: Connection refused)\n"
    "E: Some index files failed to download. They have been ignored, or old ones used instead.\n"
)


def test_an_unreachable_mirror_fails_with_apt_s_words() -> None:
    builder = FakeBuilder(RunResult(90, "", APT_UNREACHABLE))
    with pytest.raises(SocleError) as caught:
        pending_security_updates(builder, "my/debian:12", sources=SOURCES)
    message = caught.value.message
    assert message.startswith("apt in my/debian:12 could not update its package lists")
    assert "Connection refused" in message
    assert caught.value.hint


def test_fetch_warnings_of_an_older_apt_count_as_unreachable() -> None:
    # apt before 2.1 ignores Error-Mode and exits 0 with W: lines; lists would be empty.
    warnings = APT_UNREACHABLE.replace("E: ", "W: ")
    builder = FakeBuilder(RunResult(0, "0 upgraded, 0 newly installed", warnings))
    with pytest.raises(SocleError, match="could not update its package lists"):
        pending_security_updates(builder, "my/debian:11", sources=SOURCES)


def test_an_image_without_apt_is_refused() -> None:
    builder = FakeBuilder(RunResult(91, "", ""))
    with pytest.raises(SocleError, match="has no apt-get"):
        pending_security_updates(builder, "my/busybox:1", sources=SOURCES)


def test_any_other_failure_shows_the_exit_code_and_tail() -> None:
    builder = FakeBuilder(RunResult(100, "", "E: Could not get lock /var/lib/dpkg/lock\n"))
    with pytest.raises(SocleError, match="exit code 100") as caught:
        pending_security_updates(builder, "my/debian:12", sources=SOURCES)
    assert "Could not get lock" in caught.value.message


@pytest.mark.parametrize("network", ["none", "host"])
def test_builders_run_with_the_network_asked_for(network: str) -> None:
    assert buildah_run_command("c", ["true"], user=None, network=network)[2:4] == [
        "--network",
        network,
    ]
    assert docker_run_command("i", ["true"], user=None, network=network)[3:5] == [
        "--network",
        network,
    ]


def test_builders_refuse_other_networks() -> None:
    with pytest.raises(InputError):
        buildah_run_command("c", ["true"], user=None, network="bridge")
    with pytest.raises(InputError):
        docker_run_command("i", ["true"], user=None, network="bridge")
