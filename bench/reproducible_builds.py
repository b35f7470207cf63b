"""Build each Dockerfile image of a catalog twice on its published parent, compare per file.

Run after `socle build -c CATALOG --registry HOST` has published the family once:
    .venv/bin/python bench/reproducible_builds.py -c examples/enterprise/catalog.yaml \\
        --registry 127.0.0.1:5000 [--builder buildah] [--only java:17-debian12]
Each built variant is built twice with one SOURCE_DATE_EPOCH (today at 00:00 UTC)
on the digest its parent is published under, and normalised as socle does. Prints
per variant whether both builds have one digest, and the paths that differ in the
first differing layer.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from socle.builders import BUILDERS, BuildRequest
from socle.core.catalog import Kind
from socle.executor import insecure
from socle.oci.layerdiff import changes, layer_entries
from socle.oci.layout import LayoutImage, read_image_layout
from socle.oci.reference import Reference
from socle.rebuild import compare
from socle.registry.client import RegistryClient
from socle.timestamps import day_epoch
from socle.validate import validate


def main() -> int:
    args = parse_args()
    catalog, graph = validate(Path(args.catalog), registry=args.registry)
    epoch = day_epoch()
    builder = BUILDERS[args.builder]()
    failures = 0
    with RegistryClient.from_config() as client, tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        for variant in graph.variants:
            if variant.image.kind is not Kind.BUILD or (args.only and variant.key not in args.only):
                continue
            assert variant.parent is not None
            assert variant.version.context and variant.version.dockerfile
            parent = Reference.parse(variant.parent.ref(catalog.registry))
            head = client.head_manifest(parent)
            if head is None:
                print(f"{variant.key}: its parent {parent} is not published: skipped")
                continue
            base = f"{catalog.registry}/{variant.parent.image.repository}@{head.digest}"
            images: list[LayoutImage] = []
            for attempt in ("a", "b"):
                name = f"socle-bench/{variant.image.name}:{variant.exact_tag}-{attempt}"
                started = time.monotonic()
                request = BuildRequest(
                    context=variant.version.context,
                    dockerfile=variant.version.dockerfile,
                    build_args={**dict(variant.version.build_args), "BASE_IMAGE": base},
                    labels={},
                    name=name,
                    output=Path(tmp) / variant.key.replace(":", "_") / attempt,
                    insecure_registries=insecure(catalog.registry),
                    source_date_epoch=epoch,
                )
                try:
                    images.append(read_image_layout(builder.build(request).layout))
                finally:
                    builder.remove(name)
                print(f"{variant.key} build {attempt}: {time.monotonic() - started:.1f} s")
            failures += report(variant.key, *images)
    return 1 if failures else 0


def report(key: str, a: LayoutImage, b: LayoutImage) -> int:
    same = a.digest == b.digest
    print(f"{key}: {'SAME' if same else 'DIFFERENT'} digest {a.digest} / {b.digest}")
    if same:
        return 0
    for index, (x, y) in enumerate(zip(a.layers, b.layers, strict=False)):
        if x.digest == y.digest:
            continue
        found = changes(layer_entries(a.blob_path(x.digest)), layer_entries(b.blob_path(y.digest)))
        print(f"  layer {index + 1}/{len(a.layers)}: {len(found)} paths differ")
        for change in found[:40]:
            print(f"    {change.describe()}")
    if a.layers == b.layers and a.config_descriptor.digest != b.config_descriptor.digest:
        for line in compare(a, b):
            print(f"  {line}")
    return 1


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--catalog", required=True)
    parser.add_argument("--registry", default=None)
    parser.add_argument("--builder", default="buildah", choices=sorted(BUILDERS))
    parser.add_argument("--only", action="append", default=[], help="a variant key (repeatable)")
    parser.add_argument("--tmp", default=None, help="folder for the work folders")
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(main())
