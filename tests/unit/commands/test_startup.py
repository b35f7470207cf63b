"""The light commands must stay light: they never import the network, crypto, SBOM or display stacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SEED = str(Path(__file__).resolve().parents[3] / "examples" / "seed" / "catalog.yaml")
HEAVY = ("httpx", "cryptography", "cyclonedx", "rich", "nacl")


def probe(heavy: tuple[str, ...]) -> str:
    """A script that runs socle's CLI, then prints which of `heavy` it imported."""
    return f"""
import sys
from socle.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r}))
print("HEAVY=" + ",".join(heavy), file=sys.stderr)
sys.exit(code)
"""


PROBE = probe(HEAVY)


@pytest.mark.parametrize(
    "args",
    [["--version"], ["validate", "-c", SEED], ["tags", "-c", SEED], ["graph", "-c", SEED]],
    ids=["version", "validate", "tags", "graph"],
)
def test_light_commands_import_no_heavy_dependency(args: list[str]) -> None:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "HEAVY=\n" in done.stderr, done.stderr


def test_every_command_is_listed_and_loads() -> None:
    done = subprocess.run([sys.executable, "-m", "socle", "--help"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for name in ("build", "plan", "pins", "sbom", "scan", "sign", "verify", "watch", "up", "down"):
        assert f"  {name} " in done.stdout
