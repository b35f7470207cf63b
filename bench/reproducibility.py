"""Bootstrap the same OS spec twice and check that the results are bit-for-bit identical.

Run (as root, needs mmdebstrap and the host's Debian apt sources):
    .venv/bin/python bench/reproducibility.py [--suite bookworm] [--include curl,...]
Prints both rootfs diff_ids, both manifest digests, whether they match, and the
wall times. When the rootfs differ, lists the tar members that differ.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import sys
import tarfile
import tempfile
from pathlib import Path

from socle.bootstrap.mmdebstrap import BootstrapResult, bootstrap
from socle.bootstrap.spec import BootstrapSpec


def main() -> int:
    args = parse_args()
    spec = BootstrapSpec(args.suite, packages=tuple(p for p in args.include.split(",") if p))
    # Resolve "today" once, so a run across midnight still compares like with like.
    spec = dataclasses.replace(spec, source_date_epoch=spec.effective_epoch())
    print(f"spec: {spec.parameters()}")
    with tempfile.TemporaryDirectory(prefix="socle-repro-", dir=args.tmp) as tmp:
        runs = [one_run(spec, Path(tmp) / name) for name in ("a", "b")]
        a, b = runs
        for name, result in zip("ab", runs, strict=True):
            print(f"run {name}: {result.duration:6.1f} s  packages={result.package_count}")
            print(f"  rootfs diff_id  {result.diff_id}")
            print(f"  manifest digest {result.manifest_digest}")
        same_rootfs = a.diff_id == b.diff_id
        same_manifest = a.manifest_digest == b.manifest_digest
        print(f"rootfs match: {same_rootfs}   manifest match: {same_manifest}")
        if not same_rootfs:
            for line in tar_diff(Path(tmp) / "a/rootfs.tar", Path(tmp) / "b/rootfs.tar"):
                print(f"  differs: {line}")
    return 0 if same_rootfs and same_manifest else 1


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="bookworm")
    parser.add_argument("--include", default="", help="comma-separated extra packages")
    parser.add_argument("--tmp", default=None, help="folder for the two work folders")
    return parser.parse_args()


def one_run(spec: BootstrapSpec, folder: Path) -> BootstrapResult:
    return bootstrap(spec, folder / "layout", work_dir=folder)


def tar_diff(left: Path, right: Path) -> list[str]:
    """Names of the members whose metadata or content differ, with what differs."""
    a, b = members(left), members(right)
    return [
        f"{name}: {a.get(name, 'missing')} != {b.get(name, 'missing')}"
        for name in sorted(a.keys() | b.keys())
        if a.get(name) != b.get(name)
    ]


def members(path: Path) -> dict[str, tuple[object, ...]]:
    """Each member's type, mode, owner, mtime, size, link target and content hash."""
    found: dict[str, tuple[object, ...]] = {}
    with tarfile.open(path) as tar:
        for member in tar:
            content = tar.extractfile(member) if member.isfile() else None
            digest = hashlib.file_digest(content, "sha256").hexdigest()[:12] if content else ""
            found[member.name] = (
                member.type,
                oct(member.mode),
                member.uid,
                member.gid,
                member.mtime,
                member.size,
                member.linkname,
                sorted(member.pax_headers.items()),
                digest,
            )
    return found


if __name__ == "__main__":
    sys.exit(main())
