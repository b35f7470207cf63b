"""Reproducible builds and `socle rebuild --verify`, with real builders and a real registry.

A tiny Dockerfile on busybox writes a file and logs with the time in them; built
twice with a SOURCE_DATE_EPOCH it gives one digest. Published the way the
executor publishes (labels and manifest annotations), `socle rebuild --verify`
agrees with it, and names the layer and the file once the published image was
built from something else under the same records.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
import tarfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from socle.builders import BUILDERS, Builder, BuildRequest
from socle.core.convention import Variant
from socle.core.state import FINGERPRINT, INPUTS
from socle.inputs import InputReader
from socle.oci.layout import LayoutImage, read_image_layout
from socle.oci.media import BASE_DIGEST, BASE_NAME, CREATED, REF_NAME, VERSION
from socle.oci.reference import Reference
from socle.process import run
from socle.registry.client import RegistryClient
from socle.timestamps import rfc3339
from socle.validate import validate
from tests.integration.conftest import LocalRegistry, require
from tests.integration.helpers import skopeo_inspect, socle
from tests.integration.images import BUSYBOX, write_busybox_layout

pytestmark = pytest.mark.integration

EPOCH = 1_764_633_600  # 2025-12-02T00:00:00Z
DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
ARG SOURCE_DATE_EPOCH
RUN mkdir -p /app /var/log/apt /var/cache/ldconfig \\
 && echo "$(cat /proc/uptime) install app" > /var/log/dpkg.log \\
 && echo "Start-Date: $(cat /proc/uptime)" > /var/log/apt/history.log \\
 && cat /proc/uptime > /var/cache/ldconfig/aux-cache \\
 && echo GREETING > /app/greeting \\
 && touch /app/stamp
"""


@pytest.fixture(scope="module")
def own_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    reg = LocalRegistry(tmp_path_factory.mktemp("repro-registry"))
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def parent(own_registry: LocalRegistry, tmp_path_factory: pytest.TempPathFactory) -> str:
    """busybox published in this module's registry: `host/repo@digest`."""
    require("skopeo")
    if not BUSYBOX.exists():
        pytest.fail("/bin/busybox is missing: run `make setup`")
    layout = tmp_path_factory.mktemp("repro-busybox") / "layout"
    write_busybox_layout(layout)
    ref = f"{own_registry.host}/upstream/busybox:1"
    run(["skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout}", f"docker://{ref}"])
    return f"{own_registry.host}/upstream/busybox@{skopeo_inspect(ref)['Digest']}"


def _context(root: Path, greeting: str = "hello") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Dockerfile").write_text(DOCKERFILE.replace("GREETING", greeting))
    return root


def _request(context: Path, out: Path, parent: str, **changes: object) -> BuildRequest:
    fields: dict[str, object] = {
        "context": context,
        "dockerfile": context / "Dockerfile",
        "build_args": {"BASE_IMAGE": parent},
        "labels": {"org.example.team": "platform"},
        "name": f"socle-test/repro-{out.name}",
        "output": out,
        "insecure_registries": (parent.split("/")[0],),
        "source_date_epoch": EPOCH,
    }
    return BuildRequest(**{**fields, **changes})  # type: ignore[arg-type]


def _builder(name: str, request: pytest.FixtureRequest) -> Builder:
    require(name)
    if name == "docker":
        request.getfixturevalue("docker_daemon")
    return BUILDERS[name]()


@pytest.mark.parametrize("builder_name", ["buildah", "docker"])
def test_built_twice_with_an_epoch_gives_one_digest_and_keeps_the_parent_layer(
    builder_name: str, parent: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    builder = _builder(builder_name, request)
    context = _context(tmp_path / "ctx")
    images = []
    for attempt in ("one", "two"):
        name = f"socle-test/repro-{attempt}-{builder_name}"
        req = _request(context, tmp_path / attempt, parent, name=name)
        try:
            images.append(read_image_layout(builder.build(req).layout))
        finally:
            builder.remove(req.name)
    one, two = images

    assert one.digest == two.digest
    # The parent's layer is left as the builder wrote it: buildah reuses the published
    # blob itself; skopeo recompresses what the daemon holds, with or without an epoch.
    if builder_name == "buildah":
        expected = skopeo_inspect(parent)["Layers"]
    else:
        plain = _request(context, tmp_path / "plain", parent, source_date_epoch=None)
        try:
            expected = [read_image_layout(builder.build(plain).layout).layers[0].digest]
        finally:
            builder.remove(plain.name)
    assert [layer.digest for layer in one.layers[:-1]] == expected
    files = _layer_files(one, -1)
    assert "app/greeting" in files and files["app/greeting"] == EPOCH  # clamped
    assert not {
        "var/log/dpkg.log",
        "var/log/apt/history.log",
        "var/cache/ldconfig/aux-cache",
    } & set(files)
    assert one.config["created"] == rfc3339(EPOCH)
    assert one.config["config"]["Labels"]["io.github.socle.source-date-epoch"] == str(EPOCH)


def test_without_an_epoch_two_builds_differ(
    parent: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """What the normaliser removes is really there: without it the digests differ."""
    builder = _builder("buildah", request)
    context = _context(tmp_path / "ctx")
    digests = []
    for attempt in ("one", "two"):
        req = _request(context, tmp_path / attempt, parent, source_date_epoch=None)
        try:
            digests.append(read_image_layout(builder.build(req).layout).digest)
        finally:
            builder.remove(req.name)
    assert digests[0] != digests[1]


def _layer_files(image: LayoutImage, index: int) -> dict[str, int]:
    blob = image.blob_path(image.layers[index].digest).read_bytes()
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
        return {m.name.removeprefix("./"): int(m.mtime) for m in tar.getmembers()}


# --- socle rebuild --verify -----------------------------------------------------------------


def _catalog(root: Path, registry: str, parent: str) -> Path:
    image, digest = parent.split("@")
    _context(root / "app")
    path = root / "catalog.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            registry: {registry}
            namespace: repro
            images:
              base:
                upstream: {image}
                versions:
                  "1.36": {{digest: "{digest}"}}
              app:
                parents: [base]
                versions: ["1"]
            """
        )
    )
    return path


def _publish(
    registry: str, catalog: Path, context: Path, work: Path, *, tests: str = "1 passed"
) -> str:
    """Build the catalog's `app` from `context` and publish it as the executor does.

    The executor's records (fingerprint, inputs of the catalog's own files, parent,
    epoch) become the config's labels and the manifest's annotations, with the
    gates' records on the manifest only; the image is pushed by digest then tagged.
    """
    _, graph = validate(catalog)
    (variant,) = (v for v in graph.variants if v.image.name == "app")
    client = RegistryClient.from_config(insecure=(registry,))
    base = _published_base(client, registry, variant)
    labels = _records(registry, variant, base)
    builder = BUILDERS["buildah"]()
    req = BuildRequest(
        context=context,
        dockerfile=context / "Dockerfile",
        build_args={**dict(variant.version.build_args), "BASE_IMAGE": base[0]},
        labels=labels,
        name=f"socle-test/repro-publish-{work.name}",
        output=work,
        insecure_registries=(registry,),
        source_date_epoch=EPOCH,
    )
    try:
        layout = builder.build(req).layout
    finally:
        builder.remove(req.name)
    target = Reference(registry, variant.image.repository)
    annotations = {**labels, "io.github.socle.tests": tests}
    with client:
        manifest = client.push_layout(layout, target, annotations=annotations)
        client.tag(target.with_digest(manifest.digest), variant.exact_tag)
    return variant.ref(registry)


def _published_base(client: RegistryClient, registry: str, variant: Variant) -> tuple[str, str]:
    assert variant.parent is not None
    parent_ref = Reference.parse(variant.parent.ref(registry))
    if client.head_manifest(parent_ref) is None:  # the upstream copied into the catalog's place
        upstream = variant.parent.version.upstream
        assert upstream is not None and upstream.digest is not None
        source = Reference.parse(f"{upstream.image}@{upstream.digest}")
        client.copy(source, parent_ref.with_digest(upstream.digest))
        client.tag(parent_ref.with_digest(upstream.digest), variant.parent.exact_tag)
    head = client.head_manifest(parent_ref)
    assert head is not None
    return f"{registry}/{variant.parent.image.repository}@{head.digest}", head.digest


def _records(registry: str, variant: Variant, base: tuple[str, str]) -> dict[str, str]:
    assert variant.parent is not None
    return {
        FINGERPRINT: "sha256:" + "f" * 64,
        INPUTS: json.dumps(dict(InputReader().components(variant)), sort_keys=True),
        CREATED: rfc3339(EPOCH),
        VERSION: variant.version.name,
        REF_NAME: variant.exact_tag,
        BASE_NAME: variant.parent.ref(registry),
        BASE_DIGEST: base[1],
    }


def test_rebuild_verify_agrees_then_names_the_layer_and_file_of_a_tampered_image(
    own_registry: LocalRegistry, parent: str, tmp_path: Path
) -> None:
    require("buildah")
    require("diffoscope")
    host = own_registry.host
    catalog = _catalog(tmp_path / "cat", host, parent)
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    ref = _publish(host, catalog, tmp_path / "cat" / "app", tmp_path / "first")
    digest = skopeo_inspect(ref)["Digest"]

    # Published again (other gate records, same build): the same config and layers.
    _publish(host, catalog, tmp_path / "cat" / "app", tmp_path / "second", tests="2 passed")
    assert (
        skopeo_inspect(ref, raw=True)["config"]
        == skopeo_inspect(f"{ref.rsplit(':', 1)[0]}@{digest}", raw=True)["config"]
    )

    same = socle("rebuild", "--verify", ref, "-c", str(catalog), env=env)
    assert same.returncode == 0, same.stderr + same.stdout
    assert same.stdout.strip().count("\n") == 0
    assert f"{ref}: reproduced" in same.stdout

    # Same records, other content: built from another context under the same tag.
    other = _context(tmp_path / "other", greeting="tampered")
    _publish(host, catalog, other, tmp_path / "third")
    differs = socle("rebuild", "--verify", ref, "-c", str(catalog), env=env)
    assert differs.returncode == 1, differs.stderr + differs.stdout
    assert "not reproduced" in differs.stderr
    assert "layer 2 of 2 differs" in differs.stderr
    assert "changed  app/greeting (9 -> 6 bytes: content)" in differs.stderr
    assert "diffoscope:" in differs.stderr and "+hello" in differs.stderr
    assert "Traceback" not in differs.stderr


def test_rebuild_verify_refuses_a_foreign_image_and_an_unreachable_registry(
    own_registry: LocalRegistry, parent: str, tmp_path: Path
) -> None:
    catalog = _catalog(tmp_path / "cat", own_registry.host, parent)
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    foreign = socle(
        "rebuild",
        "--verify",
        f"{own_registry.host}/upstream/busybox:1",
        "-c",
        str(catalog),
        env=env,
    )
    assert foreign.returncode == 2
    assert "is not an image socle built" in foreign.stderr
    assert len(foreign.stderr.strip().splitlines()) <= 2  # the message and its hint

    gone = socle("rebuild", "--verify", "127.0.0.1:1/repro/app:1", "-c", str(catalog), env=env)
    assert gone.returncode == 1
    assert "cannot reach the registry" in gone.stderr
    assert "Traceback" not in gone.stderr
    shutil.rmtree(tmp_path / "cat")
