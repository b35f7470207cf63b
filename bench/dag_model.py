"""The scaling model: how long the generated 10,000-variant catalog takes on N agents.

Run: .venv/bin/python bench/dag_model.py --measure [--save FILE]   (real jobs, about a minute)
     .venv/bin/python bench/dag_model.py --times bench/dag_times.json   (recorded job times)

The catalog is bench/plan_scale.py's. A job is one pipeline step, `socle build
--only KEY --no-cascade --digest-file F`, whose wall time depends on the kind of
image it makes. `--measure` times such jobs for real on this machine, one at a
time, against a registry of its own on a free loopback port: upstream copies and
Dockerfile builds of a busybox catalog, one mmdebstrap bootstrap of Debian 12
minbase (from the host's apt sources), and `socle promote`. `--times` reads
`{"upstream": s, "build": s, "bootstrap": s, "promote": s}` instead.

Every job also validates and plans the whole catalog (socle plans everything to
decide one variant), so the model adds that cost, measured here in memory on the
generated catalog, plus the registry's HEADs at `--head-ms` per variant. The
final `socle promote` is one process that plans once and moves every floating
tag, at `--tag-ms` each; it runs after the last job.

Prints the graph's depth, its widest level and the variants per level, then the
wall time on N = 1, 10 and 100 agents under two schedules (level by level, as a
matrix per level runs; and the whole DAG with the longest remaining path first,
as `needs:` or an Argo dag runs), beside the two lower bounds: the critical path
and the total work divided by N.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.plan_scale import generate  # noqa: E402

from socle import stack  # noqa: E402
from socle.core.graph import Graph  # noqa: E402
from socle.core.state import MemoryState  # noqa: E402
from socle.planning import plan_with_state  # noqa: E402
from socle.process import run  # noqa: E402
from socle.validate import validate  # noqa: E402
from tests.integration.images import write_busybox_layout  # noqa: E402

AGENTS = (1, 10, 100)
KINDS = ("upstream", "bootstrap", "build")


@dataclass(frozen=True)
class Dag:
    """The variants' job kinds and parents, parents first."""

    keys: tuple[str, ...]
    kind: dict[str, str]
    parent: dict[str, str | None]
    children: dict[str, list[str]]
    level: dict[str, int]
    floating: int  # the tags promote moves: every tag but the exact ones the jobs set

    @classmethod
    def of(cls, graph: Graph) -> Dag:
        keys = tuple(v.key for v in graph.variants)
        parent = {v.key: (v.parent.key if v.parent else None) for v in graph.variants}
        children: dict[str, list[str]] = {k: [] for k in keys}
        level: dict[str, int] = {}
        for key in keys:
            up = parent[key]
            level[key] = 0 if up is None else level[up] + 1
            if up is not None:
                children[up].append(key)
        kind = {v.key: v.image.kind.value for v in graph.variants}
        floating = sum(len(v.tags) - 1 for v in graph.variants)
        return cls(keys, kind, parent, children, level, floating)

    def widths(self) -> list[int]:
        counts: dict[int, int] = {}
        for depth in self.level.values():
            counts[depth] = counts.get(depth, 0) + 1
        return [counts[d] for d in sorted(counts)]

    def remaining(self, cost: Mapping[str, float]) -> dict[str, float]:
        """Each job's longest path to the end of the graph, itself included."""
        tail: dict[str, float] = {}
        for key in reversed(self.keys):
            tail[key] = cost[key] + max((tail[c] for c in self.children[key]), default=0.0)
        return tail


def by_levels(dag: Dag, cost: Mapping[str, float], agents: int) -> float:
    """A barrier after each level (a matrix per level); longest job first within one."""
    total = 0.0
    for depth in range(len(dag.widths())):
        loads = [0.0] * min(agents, len(dag.keys))
        for seconds in sorted((cost[k] for k in dag.keys if dag.level[k] == depth), reverse=True):
            heapq.heapreplace(loads, loads[0] + seconds)
        total += max(loads)
    return total


def by_dag(dag: Dag, cost: Mapping[str, float], agents: int) -> float:
    """List scheduling of the whole DAG: a job starts when its parent is done and an
    agent is free, the one with the longest remaining path first."""
    tail = dag.remaining(cost)
    ready = [(-tail[k], k) for k in dag.keys if dag.parent[k] is None]
    heapq.heapify(ready)
    running: list[tuple[float, str]] = []
    now = 0.0
    while ready or running:
        while ready and len(running) < agents:
            _, key = heapq.heappop(ready)
            heapq.heappush(running, (now + cost[key], key))
        now, key = heapq.heappop(running)
        for child in dag.children[key]:
            heapq.heappush(ready, (-tail[child], child))
    return now


def measure(root: Path, bootstraps: int) -> dict[str, float]:
    """Job wall times of each kind, run for real one at a time; median of each kind."""
    paths = stack.StackPaths(root / "stack")
    addr = f"127.0.0.1:{free_port()}"
    stack.up(paths, registry_addr=addr, docker=False)
    try:
        layout = root / "busybox"
        write_busybox_layout(layout)
        ref = f"{addr}/up/os:1"
        run(["skopeo", "copy", "-q", "--dest-tls-verify=false", f"oci:{layout}", f"docker://{ref}"])
        digest = run(["skopeo", "inspect", "--tls-verify=false", "--format", "{{.Digest}}",
                      f"docker://{ref}"]).stdout.strip()  # fmt: skip
        catalog = measured_catalog(root, addr, digest, bootstraps)
        env = {**os.environ, "SOCLE_REGISTRY": addr, "XDG_DATA_HOME": str(root / "data"),
               "XDG_CACHE_HOME": str(root / "cache")}  # fmt: skip
        _, graph = validate(catalog)
        found: dict[str, list[float]] = {}
        for variant in graph.variants:
            seconds = job(["build", "-c", str(catalog), "--only", variant.key, "--no-cascade",
                           "--digest-file", str(root / "digest.txt")], env)  # fmt: skip
            found.setdefault(variant.image.kind.value, []).append(seconds)
            print(f"  measured {variant.key}: {seconds:.1f} s", file=sys.stderr)
        found["promote"] = [job(["promote", "-c", str(catalog)], env)]
    finally:
        stack.down(paths)
    return {kind: statistics.median(times) for kind, times in found.items()}


def measured_catalog(root: Path, addr: str, digest: str, bootstraps: int) -> Path:
    """Two upstream copies, six Dockerfile builds on them, and `bootstraps` Debian 12 minbases."""
    context = root / "tool"
    context.mkdir()
    (context / "Dockerfile").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG N\nRUN echo $N > /tool\n"
    )
    bootstrap = "\n".join(
        f"  debian{i}:\n    bootstrap: {{suite: bookworm}}\n    versions: ['12']"
        for i in range(bootstraps)
    )
    path = root / "catalog.yaml"
    path.write_text(
        f"registry: {addr}\nnamespace: bench\nimages:\n"
        f"  os:\n    upstream: {addr}/up/os\n    versions:\n"
        f"      '1.0': {{digest: '{digest}'}}\n      '1.1': {{digest: '{digest}'}}\n"
        "  tool:\n    parents: [os]\n    versions:\n"
        + "".join(f"      '{n}': {{args: {{N: '{n}'}}}}\n" for n in ("1", "2", "3"))
        + bootstrap
        + "\n"
    )
    return path


def job(args: Sequence[str], env: Mapping[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "socle", *args], env=dict(env), capture_output=True, text=True
    )
    if done.returncode != 0:
        sys.exit(f"socle {' '.join(args)} failed:\n{done.stderr}")
    return time.perf_counter() - started


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def planning(catalog: Path) -> tuple[Graph, float, float]:
    """The graph, and what every job repeats before it builds: validate, then plan it all."""
    started = time.perf_counter()
    model, graph = validate(catalog)
    validated = time.perf_counter()
    plan_with_state(model, graph, MemoryState())
    return graph, validated - started, time.perf_counter() - validated


def report(
    dag: Dag,
    times: Mapping[str, float],
    overheads: Mapping[str, float],
    promote: float,
    source: str,
) -> None:
    widths = dag.widths()
    widest = max(range(len(widths)), key=widths.__getitem__)
    print(f"graph: {len(dag.keys):,} variants, depth {len(widths)} (levels 0-{len(widths) - 1})")
    print("variants per level: " + ", ".join(f"{d}: {w:,}" for d, w in enumerate(widths)))
    print(f"widest level: {widest} ({widths[widest]:,} variants)")
    print(f"job times ({source}): " + ", ".join(f"{k} {times[k]:.1f} s" for k in KINDS)
          + f"; promote of that catalog {times.get('promote', 0.0):.1f} s")  # fmt: skip
    print(f"promote: {dag.floating:,} floating tags, {minutes(promote)} (one process, at the end)")
    print("each schedule and the bound end with that promote; CP and work/N are the jobs' alone")
    for label, extra in overheads.items():
        cost = {k: times[dag.kind[k]] + extra for k in dag.keys}
        work = sum(cost.values())
        path = max(dag.remaining(cost).values())
        print(f"\n{label} ({extra:.1f} s a job): total work {hours(work)}, "
              f"critical path {minutes(path)}")  # fmt: skip
        print(f"{'agents':>7} {'level by level':>15} {'DAG, CP first':>14} {'bound':>10}"
              f" {'CP':>9} {'work/N':>10}")  # fmt: skip
        for agents in AGENTS:
            bound = max(path, work / agents)
            print(
                f"{agents:>7} {minutes(by_levels(dag, cost, agents) + promote):>15}"
                f" {minutes(by_dag(dag, cost, agents) + promote):>14}"
                f" {minutes(bound + promote):>10} {minutes(path):>9} {minutes(work / agents):>10}"
            )


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--measure", action="store_true", help="time real jobs on this machine")
    source.add_argument("--times", type=Path, help="recorded job times (JSON)")
    parser.add_argument("--save", type=Path, help="with --measure: write the times here")
    parser.add_argument("--bootstraps", type=int, default=1, help="bootstraps to measure")
    parser.add_argument("--variants", type=int, default=10_000)
    parser.add_argument("--head-ms", type=float, default=1.08,
                        help="registry HEAD per variant, ms (docs/benchmarks.md: 1.08)")  # fmt: skip
    parser.add_argument("--tag-ms", type=float, default=8.6,
                        help="one floating tag move, ms (docs/benchmarks.md: 200 in 1.72 s)")  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="socle-dag-") as tmp:
        if args.measure:
            times = measure(Path(tmp) / "measure", args.bootstraps)
            label = f"measured in this run, {time.strftime('%Y-%m-%d')}, median per kind"
            if args.save:
                args.save.write_text(json.dumps(times, indent=2) + "\n")
        else:
            times = json.loads(args.times.read_text())
            label = f"recorded in {args.times}"
        scale = Path(tmp) / "scale"
        scale.mkdir()
        catalog, _ = generate(scale, args.variants)
        graph, validating, planning_all = planning(catalog)
    dag = Dag.of(graph)
    heads = args.head_ms / 1000
    today = validating + planning_all + heads * len(dag.keys)
    overheads = {
        "builds alone": 0.0,
        "+ each job plans the whole catalog, as socle does": today,
        "+ each job plans its lineage only": validating + heads * len(dag.widths()),
    }
    promote = today + args.tag_ms / 1000 * dag.floating
    report(dag, times, overheads, promote, label)


if __name__ == "__main__":
    main()
