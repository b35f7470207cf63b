"""Start-up cost of the commands people run most, beside an empty Python.

Run: .venv/bin/python bench/startup.py [--runs 10] [--noop-registry 127.0.0.1:5515]
       [--noop-catalog /tmp/copy/enterprise/catalog.yaml]

Each command runs `--runs` times in a fresh process; the median wall time is
printed beside `python -c pass` (the interpreter's own floor, measured in the
same run) and the command's target from issue 8. Also lists which heavy
modules (httpx, cryptography, cyclonedx, rich, sqlalchemy, alembic) each
command imported: the targets hold only while those stay out of the light
commands.

With `--noop-registry ADDR`, also times the no-op `socle build` of
examples/enterprise against ADDR (target 0.3 s, issue 14). Everything must be
published and current there already: build it once with
`socle build -c examples/enterprise/catalog.yaml --registry ADDR` (2-4 min).
The no-op still plans, checks the tag journal and records its run in the
history database (SOCLE_DB, or the SQLite file in socle's data folder).
`--noop-catalog` times a copy of the example instead (one nobody edits while
it is measured).

The commands run with their bytecode cached, as an installed socle's is: with
PYTHONDONTWRITEBYTECODE set, every run would compile socle's modules again
(0.15 s more here), so the bench caches it under a temporary
PYTHONPYCACHEPREFIX instead.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED = str(ROOT / "examples" / "seed" / "catalog.yaml")
ENTERPRISE = str(ROOT / "examples" / "enterprise" / "catalog.yaml")
HEAVY = ("httpx", "cryptography", "cyclonedx", "rich", "sqlalchemy", "alembic")
SOCLE = [sys.executable, "-m", "socle"]
CASES = [
    ("python -c pass", [sys.executable, "-c", "pass"], None),
    ("socle --version", [*SOCLE, "--version"], 0.15),
    ("socle validate -c seed", [*SOCLE, "validate", "-c", SEED], 0.3),
    ("socle tags -c seed", [*SOCLE, "tags", "-c", SEED], 0.3),
    ("socle graph -c seed", [*SOCLE, "graph", "-c", SEED], 0.3),
]


def median_seconds(command: list[str], runs: int) -> float:
    times = []
    subprocess.run(  # once unmeasured: the bytecode cache is written, the disk cache warm
        command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT
    )
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(
            command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT
        )
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def heavy_imports(command: list[str]) -> list[str]:
    if command[1:3] != ["-m", "socle"]:
        return []
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    names = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in done.stderr.splitlines()}
    return sorted(n for n in names if n in HEAVY)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument(
        "--noop-registry",
        metavar="ADDR",
        help="also time the no-op `socle build` of examples/enterprise against ADDR",
    )
    parser.add_argument(
        "--noop-catalog",
        metavar="FILE",
        default=ENTERPRISE,
        help="the catalog the no-op builds (default: examples/enterprise/catalog.yaml)",
    )
    args = parser.parse_args()
    if os.environ.pop("PYTHONDONTWRITEBYTECODE", None):
        prefix = tempfile.mkdtemp(prefix="socle-bench-pycache-")
        atexit.register(shutil.rmtree, prefix, True)
        os.environ["PYTHONPYCACHEPREFIX"] = prefix
    cases = list(CASES)
    if args.noop_registry:
        noop = [*SOCLE, "build", "-c", args.noop_catalog, "--registry", args.noop_registry]
        cases.append(("socle build (no-op) -c ent.", noop, 0.3))
    floor = None
    print(f"{'command':28} {'median':>9} {'vs python':>10} {'target':>8}  heavy imports")
    for label, command, target in cases:
        seconds = median_seconds(command, args.runs)
        floor = floor if floor is not None else seconds
        verdict = (
            "" if target is None else f"{target:.2f} s {'ok' if seconds <= target else 'MISSED'}"
        )
        heavy = ", ".join(heavy_imports(command)) or "none"
        print(f"{label:28} {seconds:8.3f}s {seconds / floor:9.1f}x {verdict:>12}  {heavy}")


if __name__ == "__main__":
    main()
