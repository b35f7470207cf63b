"""`socle prune` on a real registry, then its garbage collection, with the bytes it freed.

A signed busybox family is rebuilt five times (the exact tag moves each time,
leaving four superseded generations held by their signature tags). A rendered
deployment pins the first one. `socle prune --keep 2` must keep the current
generation, the one before it and the pinned one, and delete the other two with
their signatures; skopeo (containers/image) judges what the registry still
serves, before and after `docker-registry garbage-collect` frees the space.
"""

from __future__ import annotations

import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from socle.process import run
from tests.integration.conftest import REGISTRY_BIN, LocalRegistry, require
from tests.integration.helpers import skopeo_inspect, socle
from tests.integration.images import write_busybox_layout

pytestmark = pytest.mark.integration

PASSWORD = "prune-test"
GENERATIONS = 5


@pytest.fixture(scope="module")
def own_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """A registry of this module's own: prune deletes, and GC needs it stopped."""
    if not Path(REGISTRY_BIN).exists():
        pytest.fail("docker-registry is not installed: run `make setup` (or .ci/run) first")
    reg = LocalRegistry(tmp_path_factory.mktemp("prune-registry"))
    yield reg
    if reg.proc.poll() is None:
        reg.stop()


def storage_bytes(registry: LocalRegistry) -> int:
    """`du -sb` of the registry's storage folder."""
    return int(run(["du", "-sb", str(registry.root / "data")]).stdout.split()[0])


def write_catalog(root: Path, upstream: str, generation: int) -> Path:
    image, digest = upstream.split("@")
    (root / "app").mkdir(parents=True, exist_ok=True)
    (root / "app" / "Dockerfile").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG GENERATION\n"
        # a layer of its own per generation, so deleting one frees bytes
        "RUN echo ${GENERATION} > /generation && head -c 65536 /bin/busybox > /payload\n"
    )
    path = root / "catalog.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            registry: 127.0.0.1:1
            namespace: prune
            images:
              base:
                upstream: {image}
                versions:
                  "1.36": {{digest: "{digest}"}}
              app:
                parents: [base]
                default_parent: base:1
                aliases: [latest]
                versions:
                  "1": {{args: {{GENERATION: "{generation}"}}}}
            """
        )
    )
    return path


def not_found(registry: LocalRegistry, repository: str, reference: str) -> bool:
    url = f"http://{registry.host}/v2/{repository}/manifests/{reference}"
    accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"
    return httpx.head(url, headers={"Accept": accept}, timeout=5).status_code == 404


def skopeo_reads(ref: str) -> bool:
    done = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


def test_prune_deletes_superseded_generations_and_gc_frees_their_bytes(
    own_registry: LocalRegistry, tmp_path: Path
) -> None:
    require("skopeo")
    require("buildah")
    reg = own_registry
    layout = tmp_path / "busybox"
    write_busybox_layout(layout)
    upstream_tag = f"{reg.host}/upstream/busybox:1"
    run(["skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout}", f"docker://{upstream_tag}"])
    upstream = f"{reg.host}/upstream/busybox@{skopeo_inspect(upstream_tag)['Digest']}"
    env = {
        "SOCLE_REGISTRY": reg.host,
        "SOCLE_PASSWORD": PASSWORD,
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "XDG_DATA_HOME": str(tmp_path / "data"),  # no `socle up` registry config here
    }
    made = socle("keygen", "--out", str(tmp_path / "ops"), env=env)
    assert made.returncode == 0, made.stderr

    app = f"{reg.host}/prune/app"
    generations = []
    for number in range(1, GENERATIONS + 1):
        catalog = write_catalog(tmp_path / "catalog", upstream, number)
        built = socle("build", "-c", str(catalog), "--sign-key", str(tmp_path / "ops.key"), env=env)
        assert built.returncode == 0, built.stderr + built.stdout
        generations.append(skopeo_inspect(f"{app}:1-base1.36")["Digest"])
    assert len(set(generations)) == GENERATIONS, "every rebuild is a new generation"
    first, doomed, kept = generations[0], generations[1:3], generations[3:]

    deployments = tmp_path / "deploy" / "app"
    deployments.mkdir(parents=True)
    (deployments / "deployment.yaml").write_text(f"      image: {app}@{first}\n")
    tags = socle("tags", "-c", str(catalog), env=env).stdout.split()
    assert f"{app}:latest" in tags and f"{app}:1" in tags
    args = ("prune", "-c", str(catalog), "--keep", "2", "--deployments", str(deployments.parent))

    listed = socle(*args, env=env)
    assert listed.returncode == 0, listed.stderr
    print(listed.stdout)
    for digest in doomed:
        assert f"delete  {digest[:19]}" in listed.stdout
    assert f"keep    {first[:19]}" in listed.stdout
    assert f"deployment {deployments / 'deployment.yaml'}" in listed.stdout
    assert "generation 2 of 2" in listed.stdout
    assert "floating tag latest" in listed.stdout
    assert "dry run, nothing deleted" in listed.stdout
    assert "--yes" in listed.stdout
    assert all(skopeo_reads(f"{app}@{d}") for d in doomed), "a dry run deletes nothing"

    before = storage_bytes(reg)
    applied = socle(*args, "--yes", env=env)
    assert applied.returncode == 0, applied.stderr
    print(applied.stdout)
    # each doomed generation: image, .sig, .att, referrers index, its bundle referrers (3)
    assert "deleted 14 manifests (2 generations)" in applied.stdout
    assert "docker-registry garbage-collect CONFIG" in applied.stdout

    for ref in tags:
        assert skopeo_reads(ref), f"{ref} no longer reads after prune"
    for digest in [first, *kept]:
        assert skopeo_reads(f"{app}@{digest}")
        assert not not_found(reg, "prune/app", f"sha256-{digest[7:]}.sig")
    for digest in doomed:
        assert not skopeo_reads(f"{app}@{digest}")
        assert not_found(reg, "prune/app", digest)
        for suffix in (".sig", ".att", ""):
            assert not_found(reg, "prune/app", f"sha256-{digest[7:]}{suffix}")
    verified = socle("verify", "--key", str(tmp_path / "ops.pub"), f"{app}:1", env=env)
    assert verified.returncode == 0, verified.stderr
    again = socle(*args, env=env)
    assert "nothing to prune" in again.stdout, again.stdout

    # The registry's garbage collection, on the stopped registry, frees the bytes.
    reg.stop()
    collected = run([REGISTRY_BIN, "garbage-collect", str(reg.config)])
    after = storage_bytes(reg)
    freed = before - after
    print(
        f"\nprune + `docker-registry garbage-collect {reg.config}`: "
        f"{before} -> {after} bytes, freed {freed} bytes "
        f"({collected.stdout.count('blob eligible for deletion')} blobs)"
    )
    assert freed > 0
    reg.start()
    for ref in tags:
        assert skopeo_reads(ref), f"{ref} no longer reads after garbage collection"
    assert skopeo_reads(f"{app}@{first}"), "the pinned generation survives garbage collection"
    copied = tmp_path / "copied"
    run(["skopeo", "copy", "--src-tls-verify=false", f"docker://{app}@{first}", f"oci:{copied}"])
    verified = socle("verify", "--key", str(tmp_path / "ops.pub"), f"{app}@{first}", env=env)
    assert verified.returncode == 0, verified.stderr
