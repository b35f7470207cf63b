"""Plan 1,000 variants against a live local registry; promote 200 alias tags.

Run: .venv/bin/python bench/registry_plan.py [--variants 1000] [--aliases 200]

Starts its own docker-registry on a free loopback port (socle's stack code),
publishes every variant of a generated catalog with socle's records, then:
- times `socle plan` (cold manifest cache, then warm; three rounds, each right
  after its own HEAD limit, medians printed) against a sequential
  `skopeo inspect` loop over the same exact references, in the same run;
- measures the registry's own limit in the same run: the HEAD limit with
  `ab -i -k -c 4 -n 1000` (keep-alive HEADs; ab takes one URL, so one
  representative exact-tag URL is repeated), and as a cross-check the GET
  limit over all 1,000 distinct manifest paths with `wrk` (4 keep-alive
  connections, a Lua script cycling over the paths; wrk cannot HEAD: it waits
  for the body the Content-Length announces); socle's plan is printed as a
  multiple of the HEAD limit;
- promotes alias tags with socle's client and counts, in the registry's access
  log, the blob requests the promotion caused (the target is zero).
Targets: plan under 2 s and at least 20x faster than the skopeo loop (issue 3);
plan <= 1.25x the HEAD limit warm and <= 1.5x cold (issue 14).
Needs wrk and ab (Debian packages wrk and apache2-utils) beside skopeo.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from socle import stack
from socle.core.catalog import Catalog
from socle.core.graph import Graph
from socle.core.state import FINGERPRINT, INPUTS, MemoryState
from socle.oci.media import BASE_DIGEST
from socle.oci.reference import Reference
from socle.planning import plan_with_state
from socle.registry.client import ACCEPT_MANIFESTS as ACCEPT
from socle.registry.client import RegistryClient
from socle.registry.state import RegistryState
from socle.validate import validate

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
LIMIT_CONNECTIONS = 4
ROUNDS = 3
WRK_SCRIPT = """\
paths = {%s}
accept = "%s"
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1], {Accept = accept})
end
done = function(summary, latency, requests)
  io.write(string.format("socle-bench %%d %%d %%d\\n", summary.requests, summary.duration,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.timeout))
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def generate(root: Path, variants: int, registry: str) -> Path:
    """One bootstrapped OS with 10 versions; runtimes on all of them, 3 versions each."""
    images = max(1, (variants - 10) // 30)
    lines = [f"registry: {registry}", "namespace: bench", "images:"]
    lines.append(
        "  os:\n    bootstrap: {suite: bookworm}\n    versions: "
        + str([f"1.{i}" for i in range(10)])
    )
    lines.extend(
        f"  rt{i}:\n    parents: [os]\n    context: ctx\n    args: {{N: '{i}'}}\n    versions: ['1', '2', '3']"
        for i in range(images)
    )
    (root / "ctx").mkdir()
    (root / "ctx" / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n")
    path = root / "catalog.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def blob(client: RegistryClient, repo: Reference, data: bytes) -> dict[str, object]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    client.ensure_blob(repo, digest, data, mount_from=["bench/os"])
    return {"digest": digest, "size": len(data)}


def publish(client: RegistryClient, catalog_path: Path, registry: str) -> list[str]:
    """Publish every variant (tiny config + layer) with the records `socle plan` reads."""
    catalog, graph = validate(catalog_path)
    plan = plan_with_state(catalog, graph, MemoryState())
    config, layer = (
        b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}',
        b"x" * 64,
    )
    digests: dict[str, str] = {}
    repos_ready: dict[str, tuple[dict[str, object], dict[str, object]]] = {}
    refs = []
    for step in plan.steps:
        variant = step.variant
        repo = Reference(registry, variant.image.repository)
        if repo.repository not in repos_ready:
            repos_ready[repo.repository] = (blob(client, repo, config), blob(client, repo, layer))
        cfg, lay = repos_ready[repo.repository]
        annotations = {
            FINGERPRINT: step.fingerprint,
            INPUTS: json.dumps(dict(step.inputs), sort_keys=True),
        }
        if variant.parent is not None:
            annotations[BASE_DIGEST] = digests[variant.parent.key]
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **cfg},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **lay}],
            "annotations": annotations,
        }
        ref = repo.with_tag(variant.exact_tag)
        digests[variant.key] = client.put_manifest(ref, json.dumps(manifest).encode(), OCI_MANIFEST)
        refs.append(str(ref))
    return refs


def manifest_paths(refs: list[str]) -> list[str]:
    paths = []
    for ref in refs:
        reference = Reference.parse(ref)
        paths.append(f"/v2/{reference.repository}/manifests/{reference.tag}")
    return paths


def wrk_limit(root: Path, addr: str, paths: list[str], seconds: int = 3) -> float:
    """Seconds per len(paths) keep-alive GETs at wrk's steady rate, cycling over the paths."""
    listed = ", ".join(json.dumps(p) for p in paths)
    script = root / "heads.lua"
    script.write_text(WRK_SCRIPT % (listed, ACCEPT))
    done = subprocess.run(
        ["wrk", "-t", "2", "-c", str(LIMIT_CONNECTIONS), "-d", f"{seconds}s", "-s", str(script)]
        + [f"http://{addr}/"],
        check=True,
        capture_output=True,
        text=True,
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("socle-bench "))
    requests, micros, errors = (int(x) for x in line.split()[1:])
    assert errors == 0 and requests > len(paths), done.stdout
    return len(paths) * micros / 1e6 / requests


def ab_limit(addr: str, path: str, count: int) -> float:
    """Seconds `ab -i -k -c 4 -n count` (keep-alive HEADs) takes over one URL repeated."""
    done = subprocess.run(
        ["ab", "-q", "-i", "-k", "-c", str(LIMIT_CONNECTIONS), "-n", str(count)]
        + ["-H", f"Accept: {ACCEPT}", f"http://{addr}{path}"],
        check=True,
        capture_output=True,
        text=True,
    )
    failed = re.search(r"Non-2xx responses:\s+(\d+)", done.stdout)
    assert failed is None, done.stdout
    match = re.search(r"Time taken for tests:\s+([\d.]+) seconds", done.stdout)
    assert match is not None, done.stdout
    return float(match.group(1))


def plan_round(
    cache: Path, catalog: Catalog, graph: Graph, addr: str, paths: list[str]
) -> tuple[float, float, float]:
    """The HEAD limit, then socle's plan with a cold and a warm cache: seconds each."""
    limit = ab_limit(addr, paths[len(paths) // 2], len(paths))
    timings = []
    for _ in ("cold", "warm"):
        with RegistryState(RegistryClient.from_config(), cache=cache) as state:
            t0 = time.perf_counter()
            plan = plan_with_state(catalog, graph, state)
            timings.append(time.perf_counter() - t0)
        assert not plan.builds(), [s.reasons for s in plan.builds()][:3]
    return limit, timings[0], timings[1]


def blob_requests(log: Path) -> int:
    text = log.read_text(errors="replace")
    return len(re.findall(r'"(?:POST|PUT|PATCH) /v2/[^ ]*/blobs/', text))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variants", type=int, default=1000)
    parser.add_argument("--aliases", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = stack.StackPaths(root / "stack")
        addr = f"127.0.0.1:{free_port()}"
        stack.up(paths, registry_addr=addr, docker=False)
        try:
            run(root, addr, paths.log("registry"), args.variants, args.aliases)
        finally:
            stack.down(paths)


def run(root: Path, addr: str, log: Path, variants: int, aliases: int) -> None:
    catalog_path = generate(root, variants, addr)
    with RegistryClient.from_config() as client:
        refs = publish(client, catalog_path, addr)
    catalog, graph = validate(catalog_path)
    print(f"catalog: {len(graph.variants)} variants published to {addr}")

    paths = manifest_paths(refs)
    wrk = wrk_limit(root, addr, paths)
    # Limit and plans measured back to back, three times: on a shared machine the
    # load moves between rounds, so each round's ratio is kept and the median shown.
    rounds = [plan_round(root / f"cache-{i}", catalog, graph, addr, paths) for i in range(ROUNDS)]
    for i, (ab, cold, warm) in enumerate(rounds):
        print(
            f"round {i + 1}: HEAD limit {ab:5.2f} s, socle cold {cold:5.2f} s "
            f"({cold / ab:4.2f}x), warm {warm:5.2f} s ({warm / ab:4.2f}x)"
        )
    ab, cold, warm = (statistics.median(r[i] for r in rounds) for i in range(3))
    cold_ratio = statistics.median(r[1] / r[0] for r in rounds)
    warm_ratio = statistics.median(r[2] / r[0] for r in rounds)
    print(f"socle plan (cold cache):     {cold:6.2f} s  (median of {ROUNDS}, 0 builds)")
    print(f"socle plan (warm cache):     {warm:6.2f} s")
    print(
        f"HEAD limit, ab -i -k -c 4:   {ab:6.2f} s  "
        f"({len(paths)} HEADs of one exact-tag URL, repeated)"
    )
    print(
        f"GET limit, wrk -c 4:         {wrk:6.2f} s  (per {len(paths)} GETs cycling over the "
        "distinct paths, steady rate over 3 s)"
    )
    print(f"ratio (socle warm / HEAD limit): {warm_ratio:5.2f}x   (target <= 1.25x)")
    print(f"ratio (socle cold / HEAD limit): {cold_ratio:5.2f}x   (target <= 1.5x)")

    t0 = time.perf_counter()
    for ref in refs:
        subprocess.run(
            ["skopeo", "inspect", "--tls-verify=false", f"docker://{ref}"],
            check=True,
            capture_output=True,
        )
    skopeo = time.perf_counter() - t0
    print(
        f"skopeo inspect loop:         {skopeo:6.2f} s  ({skopeo / len(refs) * 1000:.1f} ms per reference)"
    )
    print(f"ratio (skopeo / socle warm): {skopeo / warm:6.1f}x   (target >= 20x, plan < 2 s)")
    print(f"ratio (skopeo / socle cold): {skopeo / cold:6.1f}x")

    before = blob_requests(log)
    with RegistryClient.from_config() as client:
        t0 = time.perf_counter()
        for i, ref in enumerate(refs[:aliases]):
            reference = Reference.parse(ref)
            digest = client.head_manifest(reference)
            assert digest is not None
            client.tag(reference.with_digest(digest.digest), f"alias-{i}")
        promote = time.perf_counter() - t0
    moved = blob_requests(log) - before
    print(
        f"promote {aliases} alias tags:    {promote:6.2f} s, blob upload requests: {moved} (target 0)"
    )


if __name__ == "__main__":
    main()
