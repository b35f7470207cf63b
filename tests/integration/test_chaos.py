"""The chaos harness, short: kills in a build, in signing and inside the tag phase.

`make chaos` runs all twenty kill points (bench/chaos.py); this runs three of
them on every CI run, with the same judges: skopeo for tags and blobs, cosign
for signatures, and the registry alone as the source of truth.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from bench.chaos import TARGETS, Chaos, Kill, Target

from socle.process import run
from tests.integration.helpers import tool

pytestmark = pytest.mark.integration


def pick(phase: str) -> Target:
    return next(t for t in TARGETS if t.phase == phase)


@pytest.fixture
def chaos(tmp_path: Path) -> Iterator[Chaos]:
    tool("cosign")
    made = Chaos(tmp_path)
    made.start()
    yield made
    made.stop()


@pytest.mark.parametrize(
    "phase",
    [
        "build: java starts",
        "signing: the third image",
        "tags: after the first variant's moves",
    ],
)
def test_a_kill_leaves_every_family_whole_and_the_rerun_completes(
    chaos: Chaos, phase: str
) -> None:
    kill = chaos.round(pick(phase))
    assert kill.killed, f"the run ended before the kill point {phase!r}"
    assert kill.violations == []
    print(f"\n{phase}: landed at `{kill.landed}`, half-moved families {kill.half_moved}")


def test_the_judges_see_a_family_mixed_without_a_record(chaos: Chaos) -> None:
    """A judge that cannot fail proves nothing: a hand-made mix with no record is caught."""
    before = chaos.snapshot()
    owners = chaos.owners()
    chaos.new_generation()
    chaos.build_to_completion()
    java = next(i for i in owners if i["name"] == "java" and "latest" in " ".join(i["refs"]))
    latest = next(r for r in java["refs"] if r.endswith(":latest"))
    old = before[java["refs"][0]]
    assert old is not None
    # Put `latest` back on the old build by hand: java is now mixed, and no record says so.
    repository = latest.rsplit(":", 1)[0]
    run(["skopeo", "copy", "-q", "--src-tls-verify=false", "--dest-tls-verify=false",
         f"docker://{repository}@{old}", f"docker://{latest}"])  # fmt: skip
    verdict = Kill(pick("build: java starts"))
    chaos.judge(before, owners, verdict)
    assert any(v.startswith("(a) java is mixed") for v in verdict.violations), verdict.violations
