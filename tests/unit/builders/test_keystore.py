"""Java keystores written by the JDK's own keytool, clamped, then read back by keytool."""

from __future__ import annotations

import gzip
import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from socle.builders.keystore import MAGIC, clamp_jks, looks_like_keystore
from socle.builders.normalise import normalise_layout
from socle.oci.layout import read_image_layout, write_image_layout

EPOCH = 86_400 * 365  # 1971-01-01T00:00:00Z, long before keytool ran


def keytool(*args: str) -> str:
    done = subprocess.run(["keytool", *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A JKS `cacerts` as ca-certificates-java writes it: trusted certificates, plus a key."""
    folder = tmp_path_factory.mktemp("jks")
    path, cert = str(folder / "cacerts"), str(folder / "ca.pem")
    common = ["-keystore", path, "-storetype", "JKS", "-storepass", "changeit"]
    keytool("-genkeypair", *common, "-alias", "mine", "-keyalg", "EC", "-dname", "CN=mine")
    keytool("-genkeypair", *common, "-alias", "ca", "-keyalg", "EC", "-dname", "CN=Test CA")
    keytool("-exportcert", *common, "-alias", "ca", "-rfc", "-file", cert)
    keytool("-delete", *common, "-alias", "ca")
    keytool("-importcert", *common, "-alias", "debian:test_ca.pem", "-file", cert, "-noprompt")
    return (folder / "cacerts").read_bytes()


def listing(data: bytes, tmp_path: Path, password: str = "changeit") -> str:
    path = tmp_path / "listed.jks"
    path.write_bytes(data)
    return keytool(
        "-list", "-v", "-keystore", str(path), "-storetype", "JKS", "-storepass", password
    )


def test_keytool_reads_the_clamped_store_with_every_date_at_the_epoch(
    store: bytes, tmp_path: Path
) -> None:
    assert store.startswith(MAGIC)
    assert "1971" not in listing(store, tmp_path)

    clamped = clamp_jks(store, EPOCH)

    assert clamped is not None and len(clamped) == len(store)
    shown = listing(clamped, tmp_path)  # keytool checks the integrity digest with the password
    assert shown.count("Creation date: Jan 1, 1971") == 2, shown
    assert "Entry type: trustedCertEntry" in shown and "Entry type: PrivateKeyEntry" in shown
    assert "debian:test_ca.pem" in shown


def test_clamping_is_idempotent_and_keeps_older_dates(store: bytes) -> None:
    clamped = clamp_jks(store, EPOCH)
    assert clamped is not None
    assert clamp_jks(clamped, EPOCH) is None  # nothing later than the epoch is left
    assert clamp_jks(store, 4_000_000_000) is None  # every date is already before 2096


def test_a_store_sealed_with_another_password_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "other.jks"
    keytool(
        "-genkeypair",
        "-keystore",
        str(path),
        "-storetype",
        "JKS",
        "-storepass",
        "not-changeit",
        "-alias",
        "a",
        "-keyalg",
        "EC",
        "-dname",
        "CN=a",
    )
    assert clamp_jks(path.read_bytes(), EPOCH) is None
    assert clamp_jks(path.read_bytes(), EPOCH, password="not-changeit") is not None


def test_files_that_only_look_like_a_keystore_are_left_alone(store: bytes) -> None:
    assert clamp_jks(b"not a keystore", EPOCH) is None
    assert clamp_jks(MAGIC + b"\x00" * 40, EPOCH) is None  # no valid seal
    truncated = store[: len(store) // 2]
    assert clamp_jks(truncated, EPOCH) is None


def test_only_keystore_names_are_read() -> None:
    assert looks_like_keystore("etc/ssl/certs/java/cacerts")
    assert looks_like_keystore("opt/app/conf/server.jks")
    assert looks_like_keystore("opt/app/.keystore")
    assert not looks_like_keystore("etc/ssl/certs/ca-certificates.crt")
    assert not looks_like_keystore("usr/share/java/app.jar")


def _tar(path: Path, entries: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), EPOCH + 10, 0o644
            tar.addfile(info, io.BytesIO(data))
    return path


def test_the_normaliser_clamps_the_cacerts_a_build_wrote(store: bytes, tmp_path: Path) -> None:
    parent = _tar(tmp_path / "parent.tar", {"bin/sh": b"#!"})
    built = _tar(tmp_path / "built.tar", {"etc/ssl/certs/java/cacerts": store, "etc/a": b"1"})
    layout = tmp_path / "layout"
    config = {"architecture": "amd64", "os": "linux", "created": "2026-12-02T02:00:05Z"}
    write_image_layout(layout, layers=[parent, built], config=config, ref_name="latest")

    result = normalise_layout(layout, epoch=EPOCH, keep=1)

    assert result.clamped == ("etc/ssl/certs/java/cacerts",)
    image = read_image_layout(layout)
    data = gzip.decompress(image.blob_path(image.layers[1].digest).read_bytes())
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.extractfile("etc/ssl/certs/java/cacerts")
        assert member is not None
        assert member.read() == clamp_jks(store, EPOCH)
