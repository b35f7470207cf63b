"""Time the SBOM inventory of a catalog's published images, cold and with the layer cache warm.

Run: .venv/bin/python bench/sbom_cache.py --registry 127.0.0.1:5514 \\
         [-c examples/enterprise/catalog.yaml] [--repeat 3]

Setup: the catalog built once into that registry (`socle up --registry-addr ADDR`,
`socle build -c CATALOG --registry ADDR`). Each image is fetched into an OCI
layout, then, per round and per image, in build order (parents first):
  cold    `inventory(layout)` without a cache (what the SBOM gate did before)
  warm    `inventory(layout, cache)` where the cache already holds the parents'
          layers (what the gate does in a cascade: the parent was inventoried
          just before), so only the image's own layers are read (and hashed,
          and written to the cache)
  hot     the same again, every layer cached (a rerun of the same image)
Both inventories are compared; a difference is an error (exit 1).
Prints one line per image (best of the rounds, in seconds) and the totals.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from socle.core.convention import Variant  # noqa: E402
from socle.localimage import fetch_layout  # noqa: E402
from socle.oci.reference import Reference  # noqa: E402
from socle.registry.client import RegistryClient  # noqa: E402
from socle.sbom import inventory  # noqa: E402
from socle.sbom.cache import LayerCache  # noqa: E402
from socle.sbom.contents import read  # noqa: E402
from socle.validate import validate  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", required=True, help="host:port the catalog was built into")
    parser.add_argument(
        "-c", "--catalog", type=Path, default=ROOT / "examples/enterprise/catalog.yaml"
    )
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the best time counts")
    args = parser.parse_args()
    _, graph = validate(args.catalog, registry=args.registry)
    with tempfile.TemporaryDirectory(prefix="socle-bench-sbom-") as tmp:
        layouts = fetch(graph.variants, args.registry, Path(tmp))
        cold: dict[str, float] = {}
        warm: dict[str, float] = {}
        hot: dict[str, float] = {}
        cached: dict[str, str] = {}
        for round_ in range(args.repeat):
            cache = LayerCache(Path(tmp) / f"cache{round_}")
            for variant in graph.variants:
                layout = layouts[variant.key]
                if variant.parent is not None:  # the cascade inventoried the parent just before
                    read(layouts[variant.parent.key], cache)
                started = time.perf_counter()
                uncached = inventory(layout)
                cold[variant.key] = min(cold.get(variant.key, 1e9), time.perf_counter() - started)
                started = time.perf_counter()
                reading = read(layout, cache)
                warm[variant.key] = min(warm.get(variant.key, 1e9), time.perf_counter() - started)
                started = time.perf_counter()
                again = read(layout, cache)
                hot[variant.key] = min(hot.get(variant.key, 1e9), time.perf_counter() - started)
                if reading.inventory != uncached or again.inventory != uncached:
                    print(f"{variant.key}: the cached inventory differs", file=sys.stderr)
                    return 1
                cached[variant.key] = f"{reading.cached}/{reading.layers}"
    print(f"{'image':42} {'cold s':>7} {'warm s':>7} {'ratio':>6}  cached {'hot s':>6}")
    for variant in graph.variants:
        key = variant.key
        ratio = cold[key] / warm[key]
        line = f"{key:42} {cold[key]:7.3f} {warm[key]:7.3f} {ratio:6.1f}  {cached[key]:>6}"
        print(f"{line} {hot[key]:6.3f}")
    total_cold, total_warm, total_hot = sum(cold.values()), sum(warm.values()), sum(hot.values())
    totals = f"{total_cold:7.3f} {total_warm:7.3f} {total_cold / total_warm:6.1f}"
    print(f"{'total':42} {totals}  {'':6} {total_hot:6.3f}")
    return 0


def fetch(variants: tuple[Variant, ...], registry: str, folder: Path) -> dict[str, Path]:
    layouts = {}
    with RegistryClient() as client:
        for variant in variants:
            ref = Reference.parse(variant.ref(registry))
            layouts[variant.key] = fetch_layout(client, ref, folder / variant.key.replace(":", "_"))
    return layouts


if __name__ == "__main__":
    sys.exit(main())
