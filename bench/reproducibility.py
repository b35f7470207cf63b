"""Reproducibility, measured: an OS bootstrap twice, or a whole catalog built twice.

OS mode (as root, needs mmdebstrap and the host's Debian apt sources):
    .venv/bin/python bench/reproducibility.py [--suite bookworm] [--include curl,...]
        [--architectures amd64,arm64]
Bootstraps the same spec twice per architecture and prints both rootfs diff_ids,
both manifest digests, whether they match, and the wall times (an emulated
architecture beside the native one). When the rootfs differ, lists the tar
members that differ.

Catalog mode:
    .venv/bin/python bench/reproducibility.py --catalog examples/enterprise/catalog.yaml
        [--architectures amd64,arm64] [--builder buildah] [--keep DIR] [--runs 1]
Runs `socle build` of a copy of the catalog twice, each time into a fresh
registry on the same loopback address with fresh caches (so nothing is reused),
and compares every variant's published digest. With --architectures the copy
declares them for every image: each platform is built (foreign ones under qemu)
and the per-platform build times are printed, emulated beside native.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from socle import stack
from socle.bootstrap.mmdebstrap import BootstrapResult, bootstrap
from socle.bootstrap.spec import BootstrapSpec
from socle.core.platforms import platform_of


def main() -> int:
    args = parse_args()
    arches = [a for a in args.architectures.split(",") if a]
    if args.catalog:
        return catalog_mode(Path(args.catalog), arches, args)
    if arches:
        return max(os_mode(args, arch) for arch in arches)
    return os_mode(args, None)


def os_mode(args: argparse.Namespace, arch: str | None) -> int:
    packages = tuple(p for p in args.include.split(",") if p)
    spec = BootstrapSpec(args.suite, packages=packages, architecture=arch)
    if arch:
        print(f"== {arch}")
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
    parser.add_argument("--architectures", default="", help="e.g. amd64,arm64")
    parser.add_argument("--catalog", default=None, help="build this catalog twice instead")
    parser.add_argument("--builder", default="buildah")
    parser.add_argument("--keep", default=None, help="keep the work folder here")
    parser.add_argument("--runs", type=int, choices=(1, 2), default=2, help="1: times only")
    return parser.parse_args()


# -- catalog mode ------------------------------------------------------------------------


def catalog_mode(catalog: Path, arches: list[str], args: argparse.Namespace) -> int:
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="socle-repro-"))
    root.mkdir(parents=True, exist_ok=True)
    host = f"127.0.0.1:{free_port()}"
    copy = root / "catalog"
    shutil.copytree(catalog.parent, copy, dirs_exist_ok=True)
    path = copy / catalog.name
    if arches:
        text = path.read_text()
        path.write_text(f"architectures: [{', '.join(arches)}]\n" + text)
    try:
        names = ("a", "b")[: args.runs]
        runs = [build_once(root / name, path, host, args.builder) for name in names]
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    if len(runs) == 1:  # the cost of each platform only
        print(f"build: {runs[0][2]:6.1f} s (registry {host})")
        if arches:
            print_platform_times(runs[0][1], arches)
        return 0
    (a_digests, a_times, a_wall), (b_digests, b_times, b_wall) = runs
    print(f"build a: {a_wall:6.1f} s   build b: {b_wall:6.1f} s   (registry {host}, twice fresh)")
    same = 0
    for key in a_digests:
        match = a_digests[key] == b_digests.get(key)
        same += match
        print(
            f"  {'same ' if match else 'DIFF '} {key:45} {a_digests[key][:19]}  {b_digests.get(key, '-')[:19]}"
        )
    print(f"{same} of {len(a_digests)} variants have one digest in both builds")
    if args.keep:
        for key in a_digests:
            if a_digests[key] != b_digests.get(key):
                print(f"  {key}: " + "; ".join(differences(root, key)))
    if arches:
        print_platform_times(a_times, arches)
    return 0 if same == len(a_digests) else 1


def build_once(
    folder: Path, catalog: Path, host: str, builder: str
) -> tuple[dict[str, str], dict[str, dict[str, float]], float]:
    """`socle build` into a fresh registry at `host`: digests and per-platform build times."""
    paths = stack.StackPaths(folder / "stack")
    env = {
        **os.environ,
        "SOCLE_REGISTRY": host,
        "SOCLE_BUILDER": builder,
        "XDG_DATA_HOME": str(folder / "data"),
        "XDG_CACHE_HOME": str(folder / "cache"),
    }
    for line in stack.up(paths, registry_addr=host, docker=False):
        print(f"  {line}")
    try:
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "socle", "build", "-c", str(catalog), "--events", "json"],
            capture_output=True, text=True, env=env, check=False, timeout=7200,
        )  # fmt: skip
        wall = time.monotonic() - started
        if done.returncode != 0:
            failed = [
                f"{e.get('socle.key')}: {e.get('message')}"
                for e in map(json.loads, filter(None, done.stdout.splitlines()))
                if e.get("event.action") == "failed"
            ]
            raise SystemExit("socle build failed:\n" + "\n".join(failed)[-4000:])
        times: dict[str, dict[str, float]] = {}
        for line in done.stdout.splitlines():
            event = json.loads(line) if line.startswith("{") else {}
            message = str(event.get("message", ""))
            if event.get("event.action") == "building" and message.startswith("built for "):
                platform = message.removeprefix("built for ").split(" in ")[0]
                times.setdefault(str(event["socle.key"]), {})[platform] = float(
                    event["socle.seconds"]
                )
        plan = subprocess.run(
            [sys.executable, "-m", "socle", "plan", "-c", str(catalog), "--json"],
            capture_output=True, text=True, env=env, check=True,
        )  # fmt: skip
        images = json.loads(plan.stdout)["images"]
        digests = {i["key"]: i["published_digest"] for i in images}
        for item in images:  # what was published, to say what differs
            ref = f"docker://{item['refs'][0]}"
            found = {
                part: json.loads(
                    subprocess.run(
                        ["skopeo", "inspect", *flags, "--tls-verify=false", ref],
                        capture_output=True,
                        text=True,
                        check=True,
                    ).stdout  # fmt: skip
                )
                for part, flags in (("manifest", ["--raw"]), ("config", ["--config", "--raw"]))
            }
            (folder / f"{item['key'].replace(':', '_')}.json").write_text(json.dumps(found))
        return digests, times, wall
    finally:
        stack.down(paths)


def differences(root: Path, key: str) -> list[str]:
    """What differs between the two builds' manifest and config of `key` (kept folders)."""
    name = f"{key.replace(':', '_')}.json"
    a, b = (json.loads((root / run / name).read_text()) for run in ("a", "b"))
    found = []
    for part in ("manifest", "config"):
        for field in sorted(set(a[part]) | set(b[part])):
            left, right = a[part].get(field), b[part].get(field)
            if left == right:
                continue
            if isinstance(left, dict) and isinstance(right, dict):
                keys = sorted(k for k in set(left) | set(right) if left.get(k) != right.get(k))
                found.append(f"{part}.{field}: {', '.join(keys)}")
            else:
                found.append(f"{part}.{field}")
    return found


def print_platform_times(times: dict[str, dict[str, float]], arches: list[str]) -> None:
    platforms = [platform_of(a) for a in arches]
    native = platforms[0]
    print(f"build time per platform (s), {native} first:")
    totals = dict.fromkeys(platforms, 0.0)
    for key, found in times.items():
        cells = [f"{found.get(p, 0.0):7.1f}" for p in platforms]
        ratios = [
            f"{found.get(p, 0.0) / found[native]:5.1f}x" for p in platforms[1:] if found.get(native)
        ]
        for p in platforms:
            totals[p] += found.get(p, 0.0)
        print(f"  {key:45} {' '.join(cells)}  {' '.join(ratios)}")
    ratio = [f"{totals[p] / totals[native]:.1f}x" for p in platforms[1:] if totals[native]]
    print(f"  {'total':45} {' '.join(f'{totals[p]:7.1f}' for p in platforms)}  {' '.join(ratio)}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
