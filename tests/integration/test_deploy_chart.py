"""The real Helm judges socle's chart: lint, template, and its provenance with `helm verify`."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from socle.deploy import render
from socle.deploy import spec as specs
from socle.deploy.chart import Chart, build_chart, package
from socle.deploy.provenance import provenance
from socle.validate import validate
from tests.integration.conftest import LocalRegistry
from tests.integration.helpers import ENTERPRISE, failures, skopeo_inspect, socle, tool
from tests.unit.deploy.chart_objects import IMAGE, objects

pytestmark = pytest.mark.integration


def gpg(home: Path, *args: str) -> bytes:
    if shutil.which("gpg") is None:
        pytest.fail("gpg is missing: run `apt-get install gnupg`")
    done = subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", *args], capture_output=True, check=True
    )
    return done.stdout


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("helm"), *args], capture_output=True, text=True, check=check)


def make_key(name: str) -> tuple[Path, str]:
    """A GnuPG home with one ed25519 signing key without passphrase, and its fingerprint."""
    # Short path: gpg-agent's socket lives in the home and sockets have a ~100-byte path limit.
    home = Path(tempfile.mkdtemp(prefix="gpg-", dir="/tmp"))
    home.chmod(0o700)
    gpg(
        home,
        "--passphrase",
        "",
        "--quick-generate-key",
        f"{name} <{name}@socle.test>",
        "ed25519",
        "sign",
        "never",
    )
    colons = gpg(home, "--list-secret-keys", "--with-colons").decode()
    fingerprint = next(
        line.split(":")[9] for line in colons.splitlines() if line.startswith("fpr:")
    )
    return home, fingerprint


@pytest.fixture(scope="module")
def keys() -> Iterator[dict[str, tuple[Path, str]]]:
    made = {name: make_key(name) for name in ("socle", "stranger")}
    yield made
    for home, _ in made.values():
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def chart() -> Chart:
    return build_chart("legacy-app", objects(), IMAGE, version="1.0.0", app_version="1.0")


@pytest.fixture
def packaged(tmp_path: Path, chart: Chart, keys: dict[str, tuple[Path, str]]) -> Path:
    """The package and its provenance signed by socle's key, and socle's public keyring."""
    home, fingerprint = keys["socle"]
    archive = package(chart)
    path = tmp_path / chart.archive_name
    path.write_bytes(archive)
    prov = provenance(
        chart.metadata, chart.archive_name, archive, key_id=fingerprint, gpg_home=home
    )
    (tmp_path / f"{chart.archive_name}.prov").write_bytes(prov)
    # Helm reads the legacy binary keyring, not GnuPG 2's keybox.
    (tmp_path / "pubring.gpg").write_bytes(gpg(home, "--export"))
    return path


def test_helm_lint_accepts_the_chart(packaged: Path) -> None:
    done = helm("lint", "--strict", str(packaged))
    assert "1 chart(s) linted, 0 chart(s) failed" in done.stdout


def test_helm_template_renders_every_object_with_the_image_pinned(packaged: Path) -> None:
    rendered = [d for d in yaml.safe_load_all(helm("template", "r", str(packaged)).stdout) if d]
    key = lambda o: (o["kind"], o["metadata"]["name"])  # noqa: E731
    assert sorted(rendered, key=key) == sorted(objects(), key=key)
    [deployment] = [o for o in rendered if o["kind"] == "Deployment"]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE


@pytest.mark.parametrize(
    ("setting", "refusal"),
    [
        ("image.tag=latest", "additional properties 'tag' not allowed"),
        ("image.digest=", "does not match pattern"),
        ("image.digest=latest", "does not match pattern"),
        ("image.repository=127.0.0.1:5000/my/legacy-app:1.0", "does not match pattern"),
    ],
)
def test_helm_refuses_values_that_would_unpin_the_image(
    packaged: Path, setting: str, refusal: str
) -> None:
    done = helm("template", "r", str(packaged), "--set", setting, check=False)
    assert done.returncode != 0
    assert refusal in done.stderr


def test_helm_verify_accepts_the_provenance(
    packaged: Path, keys: dict[str, tuple[Path, str]]
) -> None:
    done = helm("verify", "--keyring", str(packaged.parent / "pubring.gpg"), str(packaged))
    assert f"Using Key With Fingerprint: {keys['socle'][1]}" in done.stdout
    assert "Chart Hash Verified: sha256:" in done.stdout
    # What `helm install --verify` does before installing, checked without a cluster.
    helm(
        "template",
        "r",
        str(packaged),
        "--verify",
        "--keyring",
        str(packaged.parent / "pubring.gpg"),
    )


def test_helm_verify_refuses_a_tampered_archive(packaged: Path) -> None:
    data = bytearray(packaged.read_bytes())
    data[len(data) // 2] ^= 0x01
    packaged.write_bytes(bytes(data))
    done = helm(
        "verify", "--keyring", str(packaged.parent / "pubring.gpg"), str(packaged), check=False
    )
    assert done.returncode != 0
    assert "sha256 sum does not match" in done.stderr
    installing = helm(
        "template", "r", str(packaged), "--verify", "--keyring", str(packaged.parent / "pubring.gpg"),
        check=False,
    )  # fmt: skip
    assert installing.returncode != 0
    assert "sha256 sum does not match" in installing.stderr


def test_helm_verify_refuses_another_keys_signature(
    packaged: Path, chart: Chart, keys: dict[str, tuple[Path, str]]
) -> None:
    home, fingerprint = keys["stranger"]
    prov = provenance(
        chart.metadata, chart.archive_name, packaged.read_bytes(), key_id=fingerprint, gpg_home=home
    )
    packaged.with_name(f"{packaged.name}.prov").write_bytes(prov)
    done = helm(
        "verify", "--keyring", str(packaged.parent / "pubring.gpg"), str(packaged), check=False
    )
    assert done.returncode != 0
    assert "unknown entity" in done.stderr


def test_the_provenance_metadata_is_what_helm_itself_signs(
    tmp_path: Path, packaged: Path, keys: dict[str, tuple[Path, str]]
) -> None:
    """`helm package --sign` of the same chart folder writes the same metadata part, byte for byte."""
    home, _ = keys["socle"]
    (tmp_path / "secring.gpg").write_bytes(gpg(home, "--export-secret-keys"))
    unpacked = tmp_path / "unpacked"
    shutil.unpack_archive(packaged, unpacked)
    out = tmp_path / "helm-out"
    helm(
        "package",
        "--sign",
        "--key",
        "socle",
        "--keyring",
        str(tmp_path / "secring.gpg"),
        "-d",
        str(out),
        str(unpacked / "legacy-app"),
    )
    ours = (packaged.parent / f"{packaged.name}.prov").read_text()
    theirs = (out / packaged.name).with_suffix(".tgz.prov").read_text()
    assert theirs.split("\n...\n")[0] == ours.split("\n...\n")[0]


# -- `socle deploy chart` end to end: a socle-built, signed image in the test registry -------


def write_app_catalog(root: Path, upstream: str, namespace: str) -> Path:
    """busybox re-published as `base`, and `web` built on it: the app the chart deploys."""
    image, digest = upstream.split("@")
    (root / "web").mkdir(parents=True)
    (root / "web" / "Dockerfile").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo web > /web\n"
    )
    (root / "deploy").mkdir()
    (root / "deploy" / "web.yaml").write_text(
        "image: web:1.0-base1.36\nnamespace: web\nuser: 1000\ngroup: 1000\n"
        "replicas: 3\nports:\n  - {name: http, port: 8080}\n"
    )
    catalog = root / "catalog.yaml"
    catalog.write_text(
        f"registry: 127.0.0.1:1\nnamespace: {namespace}\nimages:\n"
        f"  base:\n    upstream: {image}\n    versions:\n"
        f'      "1.36": {{digest: "{digest}"}}\n'
        '  web:\n    parents: [base]\n    versions: ["1.0"]\n'
    )
    return catalog


@pytest.fixture(scope="module")
def published_app(
    registry: LocalRegistry, busybox: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path, Path]:
    """The catalog, socle's cosign public key and a key that did not sign; `web` published."""
    root = tmp_path_factory.mktemp("chart-app")
    catalog = write_app_catalog(root / "repo", busybox, "chart")
    env = {"SOCLE_PASSWORD": "chart-test", "XDG_CACHE_HOME": str(root / "cache")}
    for prefix in ("socle", "other"):
        made = socle("keygen", "--out", str(root / prefix), env=env)
        assert made.returncode == 0, made.stderr
    built = socle(
        "build", "-c", str(catalog), "--registry", registry.host,
        "--sign-key", str(root / "socle.key"), env=env,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-4000:] + failures(built.stdout)
    return catalog, root / "socle.pub", root / "other.pub"


def test_socle_deploy_chart_packages_the_signed_digest_and_helm_verifies_it(
    tmp_path: Path,
    registry: LocalRegistry,
    published_app: tuple[Path, Path, Path],
    keys: dict[str, tuple[Path, str]],
) -> None:
    catalog, public_key, _ = published_app
    home, fingerprint = keys["socle"]
    out = tmp_path / "charts"
    done = socle(
        "deploy", "chart", "web", "-c", str(catalog), "--registry", registry.host,
        "--key", str(public_key), "--gpg-key", fingerprint, "--gpg-home", str(home), "-o", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    archive = out / "web-1.0.0.tgz"
    assert sorted(p.name for p in out.iterdir()) == ["web-1.0.0.tgz", "web-1.0.0.tgz.prov"]
    digest = skopeo_inspect(f"{registry.host}/chart/web:1.0-base1.36")["Digest"]
    (tmp_path / "pubring.gpg").write_bytes(gpg(home, "--export"))
    helm("lint", "--strict", str(archive))
    verified = helm("verify", "--keyring", str(tmp_path / "pubring.gpg"), str(archive))
    assert fingerprint in verified.stdout
    rendered = [d for d in yaml.safe_load_all(helm("template", "r", str(archive)).stdout) if d]
    [deployment] = [o for o in rendered if o["kind"] == "Deployment"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"{registry.host}/chart/web@{digest}"
    assert deployment["spec"]["replicas"] == 3
    assert {"Namespace", "ServiceAccount", "Service", "PodDisruptionBudget", "NetworkPolicy"} <= {
        o["kind"] for o in rendered
    }


def test_socle_deploy_chart_refuses_an_image_another_key_signed_and_writes_nothing(
    tmp_path: Path,
    registry: LocalRegistry,
    published_app: tuple[Path, Path, Path],
    keys: dict[str, tuple[Path, str]],
) -> None:
    catalog, _, other_key = published_app
    home, fingerprint = keys["socle"]
    out = tmp_path / "charts"
    done = socle(
        "deploy", "chart", "web", "-c", str(catalog), "--registry", registry.host,
        "--key", str(other_key), "--gpg-key", fingerprint, "--gpg-home", str(home), "-o", str(out),
    )  # fmt: skip
    assert done.returncode == 1
    assert "is not signed with the configured key" in done.stderr
    assert not out.exists()


def test_the_legacy_apps_chart_holds_every_rendered_object(tmp_path: Path) -> None:
    """The example's own description, rendered by socle, charted: Helm gives back the same objects."""
    catalog, graph = validate(ENTERPRISE / "catalog.yaml", registry="127.0.0.1:5000")
    spec = specs.load(catalog, graph, "legacy-app")
    image = f"127.0.0.1:5000/{spec.repository}@sha256:{'cd' * 32}"
    rendered_objects = render.objects(spec, image)
    chart = build_chart(
        "legacy-app", rendered_objects, image, version="1.0.0", app_version=spec.tag
    )
    archive = tmp_path / chart.archive_name
    archive.write_bytes(package(chart))
    helm("lint", "--strict", str(archive))
    back = [d for d in yaml.safe_load_all(helm("template", "r", str(archive)).stdout) if d]
    key = lambda o: (o["kind"], o["metadata"]["name"])  # noqa: E731
    assert sorted(back, key=key) == sorted(rendered_objects, key=key)
