"""Validate + plan a generated 10,000-variant catalog against an in-memory state.

Run: .venv/bin/python bench/plan_scale.py [--variants 10000]
Prints wall times (cold: nothing published; steady: everything current) and the
process's peak memory. Targets (issue 2): under 2 s and under 300 MB.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

from socle.core.state import MemoryState, Published
from socle.planning import plan_with_state
from socle.validate import validate

# Five levels with a realistic fan-out: a few OS images, more runtimes, many app bases.
# (images, versions each, parent level) -> variants = images * versions * parent variants per image
LEVELS = [(10, 2), (50, 2), (400, 1), (1000, 1)]


def generate(root: Path, target: int) -> tuple[Path, int]:
    """Write a catalog of about `target` variants (the last level fills the rest)."""
    lines = ["registry: bench.test", "namespace: org", "images:"]
    widths: list[tuple[list[str], int]] = []  # (image names, variants per image) per level
    total = 0
    for depth, (count, versions) in enumerate(LEVELS):
        names = [f"l{depth}n{i}" for i in range(count)]
        per_image = versions * (1 if depth == 0 else widths[-1][1])
        for i, name in enumerate(names):
            vlist = [f"{v + 1}.{i % 7}" for v in range(versions)]
            if depth == 0:
                lines.append(
                    f"  {name}:\n    bootstrap: {{suite: bookworm, packages: [p{i}]}}\n    versions: {vlist}"
                )
            else:
                parent = widths[-1][0][i % len(widths[-1][0])]
                lines.append(
                    f"  {name}:\n    parents: [{parent}]\n    args: {{N: '{i}'}}\n    versions: {vlist}"
                )
                write_context(root / name, i)
        widths.append((names, per_image))
        total += count * per_image
    parents = widths[-1][0]
    per_leaf = widths[-1][1]
    leaf_count = max(0, target - total) // per_leaf
    for i in range(leaf_count):
        name = f"leaf{i}"
        parent = parents[i % len(parents)]
        lines.append(f"  {name}:\n    parents: [{parent}]\n    versions: ['1.0']")
        write_context(root / name, i)
    path = root / "catalog.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path, total + leaf_count * per_leaf


def write_context(folder: Path, i: int) -> None:
    folder.mkdir()
    (folder / "Dockerfile").write_text(f"ARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\nRUN echo {i}\n")
    (folder / "app.conf").write_text(f"setting = {i}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variants", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path, expected = generate(Path(tmp), args.variants)
        t0 = time.perf_counter()
        catalog, graph = validate(path)
        t1 = time.perf_counter()
        state = MemoryState()
        cold = plan_with_state(catalog, graph, state)
        t2 = time.perf_counter()
        for step in cold.steps:
            parent = step.variant.parent
            base = state.images[parent.ref(catalog.registry)].digest if parent else None
            state.publish(
                step.variant.ref(catalog.registry),
                Published("sha256:" + step.fingerprint[7:], step.fingerprint, step.inputs, base),
            )
        t3 = time.perf_counter()
        steady = plan_with_state(catalog, graph, state)
        t4 = time.perf_counter()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tags = sum(len(v.tags) for v in graph.variants)
    assert len(graph.variants) == expected, (len(graph.variants), expected)
    assert not steady.builds()
    print(
        f"catalog: {len(catalog.images)} images, {len(graph.variants)} variants, {tags} tags, 5 levels"
    )
    print(f"validate:              {t1 - t0:6.3f} s")
    print(f"plan (cold, all new):  {t2 - t1:6.3f} s  ({len(cold.builds())} builds)")
    print(f"plan (steady state):   {t4 - t3:6.3f} s  ({len(steady.builds())} builds)")
    print(f"validate + plan:       {t1 - t0 + t4 - t3:6.3f} s  (target < 2 s)")
    print(f"peak memory (RSS):     {peak_mb:6.0f} MB (target < 300 MB)")
    sys.exit(0)


if __name__ == "__main__":
    main()
