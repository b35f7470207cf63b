"""Both builders, for real: build on a digest-pinned parent from the test registry,
export one OCI manifest, run offline, fail loudly.

The parent is a one-layer image holding a static busybox (Debian's
busybox-static), written as an OCI layout by hand: no internet needed.
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from socle.builders import BUILDERS, Builder, BuildFailed, BuildRequest
from socle.builders.buildah import BuildahBuilder
from socle.process import run
from tests.integration.images import BUSYBOX, write_busybox_layout

pytestmark = pytest.mark.integration

CHILD = "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo hi > /hello\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def read_blob(layout: Path, digest: str) -> Any:
    return json.loads((layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes())


@pytest.fixture(scope="module")
def base_layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not BUSYBOX.exists():
        pytest.fail("/bin/busybox is missing: apt-get install busybox-static")
    layout = tmp_path_factory.mktemp("base") / "layout"
    write_busybox_layout(layout)
    return layout


@pytest.fixture(scope="module")
def base_image(base_layout: Path, registry: Any) -> str:
    """The busybox parent pushed to the test registry, as a digest-pinned reference."""
    ref = f"{registry.host}/test/base:1"
    run(["skopeo", "copy", "--dest-tls-verify=false", f"oci:{base_layout}", f"docker://{ref}"])
    digest = run(
        ["skopeo", "inspect", "--tls-verify=false", "--format", "{{.Digest}}", f"docker://{ref}"]
    ).stdout.strip()
    return f"{ref}@{digest}"


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def builder(request: pytest.FixtureRequest, base_image: str) -> Iterator[Builder]:
    if request.param == "docker":
        request.getfixturevalue("docker_daemon")
    built = BUILDERS[request.param]()
    yield built
    built.remove(base_image)


def child_request(tmp_path: Path, builder: Builder, base: str, dockerfile: str) -> BuildRequest:
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(dockerfile)
    return BuildRequest(
        context=context,
        dockerfile=context / "Dockerfile",
        build_args={"BASE_IMAGE": base},
        labels={"org.opencontainers.image.title": "child", "socle.test.builder": builder.name},
        name=f"socle-test/child-{builder.name}:1",
        output=tmp_path / "out",
        insecure_registries=(base.split("/", 1)[0],),
    )


def test_build_exports_one_manifest_that_runs_offline(
    builder: Builder, base_image: str, tmp_path: Path
) -> None:
    request = child_request(tmp_path, builder, base_image, CHILD)
    result = builder.build(request)
    try:
        index = json.loads((result.layout / "index.json").read_text())
        assert len(index["manifests"]) == 1
        manifest = read_blob(result.layout, index["manifests"][0]["digest"])
        config = read_blob(result.layout, manifest["config"]["digest"])
        assert config["config"]["Labels"]["socle.test.builder"] == builder.name
        assert len(manifest["layers"]) == 2

        hello = builder.run(request.name, ["cat", "/hello"])
        assert (hello.exit_code, hello.stdout) == (0, "hi\n")
        interfaces = builder.run(request.name, ["cat", "/proc/net/dev"]).stdout
        assert "lo:" in interfaces and "eth" not in interfaces
        failed = builder.run(
            request.name, ["sh", "-c", "id -u; echo oops >&2; exit 3"], user="65534"
        )
        assert (failed.exit_code, failed.stdout, failed.stderr.strip()) == (3, "65534\n", "oops")
    finally:
        builder.remove(request.name)


@pytest.mark.parametrize(
    ("step", "own_error"),
    [("RUN false", None), ("RUN cat /socle-missing-file", "/socle-missing-file")],
)
def test_a_failing_run_step_raises_build_failed_with_the_log_tail(
    builder: Builder, base_image: str, tmp_path: Path, step: str, own_error: str | None
) -> None:
    request = child_request(tmp_path, builder, base_image, f"{CHILD}{step}\n")
    with pytest.raises(BuildFailed) as caught:
        builder.build(request)
    message = caught.value.message
    assert message.startswith(f"build of {request.name} failed at step `{step}`")
    assert "hi > /hello" in message  # the log tail shows the steps before the failure
    if own_error is not None:
        assert any(own_error in line and "can't open" in line for line in message.splitlines())
    builder.remove(request.name)


def stored(builder: Builder, name: str) -> bool:
    """Whether the builder's own storage holds the image `name` (asked of the tool itself)."""
    inspect = {
        "buildah": ["buildah", "inspect", "--type", "image", name],
        "docker": ["docker", "image", "inspect", name],
    }[builder.name]
    return subprocess.run(inspect, capture_output=True, check=False).returncode == 0


def test_load_makes_a_layout_runnable_and_remove_deletes_it(
    builder: Builder, base_layout: Path, caplog: pytest.LogCaptureFixture
) -> None:
    name = f"socle-test/loaded-{builder.name}:1"
    builder.load(base_layout, name)
    try:
        assert stored(builder, name)
        result = builder.run(name, ["echo", "loaded"])
        assert (result.exit_code, result.stdout) == (0, "loaded\n")
    finally:
        builder.remove(name)
    assert not stored(builder, name), f"{name} is still in {builder.name}'s storage"
    with caplog.at_level(logging.DEBUG, logger="socle.builders"):
        builder.remove(name)  # already gone: quiet, no warning, no error
    assert caplog.records == []


def test_an_image_in_use_stays_with_one_warning(
    builder: Builder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    name = f"socle-test/in-use-{builder.name}:1"
    # An image of its own (no other name shares it), so removing the name cannot just untag.
    write_busybox_layout(tmp_path / "own", extra={"etc/in-use": name.encode()})
    builder.load(tmp_path / "own", name)
    holder = f"socle-test-holder-{builder.name}"
    create = {
        "buildah": ["buildah", "from", "--name", holder, name],
        "docker": ["docker", "create", "--name", holder, name, "true"],
    }[builder.name]
    delete = {"buildah": ["buildah", "rm", holder], "docker": ["docker", "rm", holder]}
    run(create)
    try:
        with caplog.at_level(logging.WARNING, logger="socle.builders"):
            builder.remove(name)  # clean-up never fails a run
        [record] = caplog.records
        assert record.getMessage().startswith(f"could not remove the local image {name}: ")
        assert stored(builder, name)
    finally:
        run(delete[builder.name])
        builder.remove(name)
    assert not stored(builder, name)


# One process of a run on this machine: it loads one layout under names of its own.
LOADER = """
import sys
from pathlib import Path
from socle.builders.buildah import BuildahBuilder
layout, prefix, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
for i in range(count):
    BuildahBuilder().load(layout, f"{prefix}:{i}")
"""


def test_runs_loading_one_layout_at_once_keep_every_name(base_layout: Path) -> None:
    """Four processes on one store, one parent image: without the store's names lock,
    3 names of 60 were lost this way and a child's FROM did not resolve."""
    processes, count = 4, 8
    loaders = [
        subprocess.Popen(
            [sys.executable, "-c", LOADER, str(base_layout), f"socle-test/race-{n}", str(count)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(processes)
    ]
    errors = [loader.communicate(timeout=300)[1] for loader in loaders]
    names = [f"socle-test/race-{n}:{i}" for n in range(processes) for i in range(count)]
    buildah = BuildahBuilder()
    try:
        assert [loader.returncode for loader in loaders] == [0] * processes, errors
        assert [name for name in names if not stored(buildah, name)] == []
    finally:
        buildah.remove(*names)
    assert [name for name in names if stored(buildah, name)] == []
