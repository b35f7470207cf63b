"""Cascade examples/enterprise into a fresh registry; compare the wall time to the builds alone.

Run: .venv/bin/python bench/cascade.py [--builder buildah] [--jobs 2] [--keep DIR]

Starts its own docker-registry on a free 127.0.0.1 port (socle's stack code,
its own data folders), copies the example to a temporary folder and runs
`socle build --events json` (signing on, the example's scan and policy) three
times in the same run:
  1. from empty: every image is built;
  2. a leaf's change: legacy-app's Dockerfile gains a label, only it rebuilds;
  3. a root change: the OS image's bootstrap packages change, everything rebuilds.
For each it prints the wall time of `socle build`, the critical path of the raw
build times (the builder's own seconds per image, from the executor's
`building ... built in N s` event, summed along the slowest parent chain), the
critical path with gates, push and signing (each image's whole time), and the
ratios. The target of issue 14: wall <= 1.10x the raw-build critical path.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from socle import stack  # noqa: E402

EXAMPLE = ROOT / "examples" / "enterprise"
PASSWORD = "cascade bench"


@dataclass
class Cascade:
    """One `socle build`: its wall time and, per variant, its raw build and whole times."""

    label: str
    wall: float
    parents: dict[str, str | None]
    raw: dict[str, float]  # key -> the build step's own seconds
    whole: dict[str, float]  # key -> build, gates, push, signing and exact tag

    def path(self, times: dict[str, float]) -> tuple[float, list[str]]:
        """The slowest chain of built variants (parents first) under `times`."""
        best: tuple[float, list[str]] = (0.0, [])
        for key in times:
            chain, node = [], key
            while node is not None and node in times:
                chain.append(node)
                node = self.parents.get(node)
            total = sum(times[k] for k in chain)
            if total > best[0]:
                best = (total, chain[::-1])
        return best

    def report(self) -> str:
        raw, raw_chain = self.path(self.raw)
        gated, gated_chain = self.path(self.whole)
        lines = [
            f"{self.label}: {len(self.raw)} built, wall {self.wall:.1f} s",
            f"  raw-build critical path   {raw:6.1f} s  ({' -> '.join(raw_chain)})",
            f"  with gates, push, signing {gated:6.1f} s  ({' -> '.join(gated_chain)})",
        ]
        if raw:
            lines.append(
                f"  ratios: wall / raw path {self.wall / raw:.2f}x (target <= 1.10x), "
                f"gated path / raw path {gated / raw:.2f}x"
            )
        lines.extend(
            f"    {key:40} build {self.raw[key]:6.1f} s, whole {self.whole.get(key, 0.0):6.1f} s"
            for key in sorted(self.raw)
        )
        return "\n".join(lines)


class Bench:
    def __init__(self, root: Path, *, builder: str, jobs: int) -> None:
        self.root = root
        self.jobs = jobs
        self.paths = stack.StackPaths(root / "stack")
        self.host = f"127.0.0.1:{free_port()}"
        self.example = root / "example"
        self.catalog = self.example / "catalog.yaml"
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT / "src"),
            "SOCLE_REGISTRY": self.host,
            "SOCLE_BUILDER": builder,
            "SOCLE_PASSWORD": PASSWORD,
            "XDG_DATA_HOME": str(root / "data"),
            "XDG_CACHE_HOME": str(root / "cache"),
        }

    def start(self) -> None:
        for line in stack.up(self.paths, registry_addr=self.host, docker=False):
            log(line)
        shutil.copytree(EXAMPLE, self.example)
        self.socle("keygen", "--out", str(self.root / "ops"))

    def stop(self) -> None:
        stack.down(self.paths)

    def socle(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "socle", *args],
            capture_output=True, text=True, env=self.env, cwd=self.root, check=False, timeout=1800,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"socle {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
        return done.stdout

    def cascade(self, label: str) -> Cascade:
        plan = json.loads(self.socle("plan", "-c", str(self.catalog), "--json"))
        parents = {i["key"]: i["parent"] for i in plan["images"]}
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "socle", "build", "-c", str(self.catalog),
             "--sign-key", str(self.root / "ops.key"), "--events", "json", "-j", str(self.jobs)],
            capture_output=True, text=True, env=self.env, cwd=self.root, check=False, timeout=1800,
        )  # fmt: skip
        wall = time.monotonic() - started
        (self.root / f"events-{label.split()[0]}.jsonl").write_text(done.stdout)  # see --keep
        events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode != 0:
            failed = [f"{e.get('socle.key')}: {e.get('message')}" for e in events
                      if e["event.action"] == "failed"]  # fmt: skip
            raise RuntimeError(f"{label}: socle build failed:\n" + "\n".join(failed)[-4000:])
        return Cascade(label, wall, parents, *timings(events))

    def change_leaf(self) -> None:
        dockerfile = self.example / "legacy-app" / "Dockerfile"
        text = dockerfile.read_text()
        dockerfile.write_text(text + 'LABEL org.example.bench="a leaf change"\n')

    def change_root(self) -> None:
        text = self.catalog.read_text()
        changed = text.replace(
            "packages: [ca-certificates]", "packages: [ca-certificates, netbase]"
        )
        assert changed != text, "the example's bootstrap packages moved: update the bench"
        self.catalog.write_text(changed)


def timings(events: list[dict[str, Any]]) -> tuple[dict[str, float], dict[str, float]]:
    raw: dict[str, float] = {}
    whole: dict[str, float] = {}
    for event in events:
        key, seconds = event.get("socle.key"), event.get("socle.seconds")
        if key is None or seconds is None:
            continue
        if event["event.action"] == "building":
            raw[key] = float(seconds)
        elif event["event.action"] == "built":
            whole[key] = float(seconds)
    return raw, whole


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run(root: Path, *, builder: str, jobs: int) -> None:
    bench = Bench(root, builder=builder, jobs=jobs)
    bench.start()
    try:
        print(bench.cascade("from empty").report(), flush=True)
        bench.change_leaf()
        print(bench.cascade("leaf change (legacy-app)").report(), flush=True)
        bench.change_root()
        print(bench.cascade("root change (debian packages)").report(), flush=True)
    finally:
        bench.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--builder", default="buildah", choices=["buildah", "docker"])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="work here and keep it (default: a temp folder)")
    args = parser.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        run(args.keep, builder=args.builder, jobs=args.jobs)
    else:
        with tempfile.TemporaryDirectory(prefix="socle-cascade-") as tmp:
            run(Path(tmp), builder=args.builder, jobs=args.jobs)


if __name__ == "__main__":
    main()
