"""Page times of the console for a 1,000-variant catalog, served from the history database.

Run: .venv/bin/python bench/console.py [--variants 1000] [--runs 300] [--repeat 20]
Seeds a SQLite history with the variants' states (as a refresh writes them) and
some runs with outcomes and events, serves the real application in-process
(Starlette's TestClient: no network, no registry) and prints the median and
worst time of each page over `--repeat` requests. Target (issue 12): the
overview well under a second.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

with warnings.catch_warnings():  # starlette's note about httpx, irrelevant to the times
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from socle.history.store import HistoryStore, OutcomeRecord, StateView
from socle.serve.app import create_app
from socle.serve.console import Console
from socle.serve.settings import ConsoleSettings

STATUSES = ("current", "current", "current", "stale", "vulnerable", "unsigned", "failed", "missing")


def states(count: int) -> list[StateView]:
    """Four levels: 10 OS images, 90 runtimes, 300 app bases, the rest leaves."""
    now = datetime.now(UTC)
    sizes = [10, 90, 300]
    sizes.append(max(0, count - sum(sizes)))
    rows: list[StateView] = []
    previous: list[str] = []
    for level, size in enumerate(sizes):
        keys = []
        for i in range(size):
            image = f"l{level}i{i // 2}"
            key = f"{image}:{i}-{level}"
            parent = previous[i % len(previous)] if previous else None
            status = STATUSES[(i * 7 + level) % len(STATUSES)]
            rows.append(
                StateView(
                    key=key,
                    image=image,
                    repository=f"org/{image}",
                    parent=parent,
                    level=level,
                    tags=(f"{i}-{level}", f"{i}", "latest"),
                    digest=None if status == "missing" else f"sha256:{i:064x}",
                    base_name=f"bench.test/org/{parent}" if parent else None,
                    base_digest=f"sha256:{i + 1:064x}" if parent else None,
                    created=now - timedelta(hours=i % 200),
                    status=status,
                    reasons=("Dockerfile changed", "parent rebuilt") if status == "stale" else (),
                    annotations={"io.github.socle.fingerprint": f"sha256:{i:064x}"},
                    vulnerabilities={"high": i % 3, "low": i % 11},
                    signed="verified",
                )
            )
            keys.append(key)
        previous = keys
    return rows


def seed_runs(store: HistoryStore, rows: list[StateView], runs: int) -> None:
    for n in range(runs):
        picked = rows[(n * 13) % len(rows) :][:20] or rows[:20]
        recorder = store.start_run(
            trigger=("cli", "watch", "serve", "webhook")[n % 4],
            catalog="bench",
            registry="bench.test",
            reasons=[{"key": r.key, "reasons": ["Dockerfile changed"]} for r in picked],
            planned=len(picked),
        )
        for r in picked:
            recorder.record("started", r.key, "building")
            recorder.record("built", r.key, "pushed", r.digest, 12.5)
        recorder.finish(
            [
                OutcomeRecord(
                    r.key,
                    "built",
                    r.digest,
                    12.5,
                    reasons=["Dockerfile changed"],
                    details={
                        "packages": 120,
                        "scan": {"scanner": "debian", "severities": {"high": 1}},
                    },
                )
                for r in picked
            ],
            status="succeeded",
            summary=f"{len(picked)} built",
        )


def measure(client: TestClient, path: str, repeat: int) -> tuple[float, float, int]:
    times = []
    size = 0
    for _ in range(repeat):
        started = time.perf_counter()
        answer = client.get(path)
        times.append(time.perf_counter() - started)
        if answer.status_code != 200:
            sys.exit(f"{path}: HTTP {answer.status_code}")
        size = len(answer.content)
    return statistics.median(times), max(times), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        catalog = root / "catalog.yaml"
        catalog.write_text("registry: bench.test\nnamespace: org\nimages: {}\n")
        store = HistoryStore.open(f"sqlite:///{root / 'history.db'}")
        console = Console(ConsoleSettings(catalog=catalog), store)
        rows = states(args.variants)
        started = time.perf_counter()
        store.replace_states(console.catalog_key, rows)
        stored = time.perf_counter() - started
        seed_runs(store, rows, args.runs)
        middle = rows[len(rows) // 2].key
        with TestClient(create_app(console, start=False)) as client:
            client.get("/")  # warm the templates
            print(
                f"{len(rows)} variants, {args.runs} runs in SQLite; "
                f"replace_states {stored * 1000:.0f} ms; median / worst of {args.repeat}:"
            )
            for path in ("/", "/lineage", "/lineage.svg", f"/images/{middle}", "/runs", "/runs/1"):
                median, worst, size = measure(client, path, args.repeat)
                print(
                    f"  GET {path:<28} {median * 1000:7.1f} ms  {worst * 1000:7.1f} ms"
                    f"  {size / 1024:7.0f} KiB"
                )
        store.close()


if __name__ == "__main__":
    main()
