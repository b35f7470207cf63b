"""The admission policies carry socle's public key and pass the shipped strict schemas."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from socle.cli import main
from socle.deploy import check, policies

REGISTRY = "registry.example.org:5000"


@pytest.fixture
def public_key() -> str:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def test_written_policies_pass_the_checker_for_every_version(
    tmp_path: Path, public_key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "socle.pub").write_text(public_key)
    out = tmp_path / "policies"
    with pytest.raises(SystemExit) as exited:
        main(
            [
                "deploy",
                "policies",
                "--key",
                str(tmp_path / "socle.pub"),
                "--registry",
                REGISTRY,
                "-o",
                str(out),
            ]
        )
    assert exited.value.code == 0, capsys.readouterr()
    items = check.manifests(out)
    assert sorted(m.label for m in items) == [
        "ClusterImagePolicy/socle-signed-images", "ClusterPolicy/socle-signed-images",
        "ImageValidatingPolicy/socle-signed-images",
    ]  # fmt: skip
    assert check.check(items, check.versions()) == []
    for item in items:  # the key survives the YAML round trip in every policy
        assert public_key in leaves(item.obj)


def leaves(value: object) -> list[object]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in leaves(v)]
    return [value]


def test_each_policy_requires_the_key_and_a_digest_on_the_registry(public_key: str) -> None:
    verify = policies.kyverno_cluster_policy(public_key, REGISTRY)["spec"]["rules"][0][
        "verifyImages"
    ][0]
    assert verify["imageReferences"] == [f"{REGISTRY}/*"]
    assert (verify["verifyDigest"], verify["required"], verify["mutateDigest"]) == (
        True,
        True,
        False,
    )
    assert verify["attestors"][0]["entries"][0]["keys"]["publicKeys"] == public_key
    ivp = policies.kyverno_image_validating_policy(public_key, REGISTRY)["spec"]
    assert ivp["attestors"][0]["cosign"]["key"]["data"] == public_key
    assert ivp["validationConfigurations"]["verifyDigest"] is True
    cip = policies.sigstore_cluster_image_policy(public_key, REGISTRY)["spec"]
    assert cip["images"] == [{"glob": f"{REGISTRY}/**"}]
    assert cip["authorities"][0]["key"]["data"] == public_key
    assert "ctlog" not in cip["authorities"][0]  # offline: no transparency log


@pytest.mark.parametrize("make", [
    policies.kyverno_cluster_policy, policies.kyverno_image_validating_policy,
    policies.sigstore_cluster_image_policy,
])  # fmt: skip
def test_a_mistyped_field_in_a_policy_is_refused_by_its_schema(
    make: object, public_key: str
) -> None:
    assert callable(make)
    policy = make(public_key, REGISTRY)
    policy["spec"]["enforcementAction"] = "deny"
    findings = check.check([check.Manifest("p.yaml", policy)], ["1.30"])
    assert [(f.field, "'enforcementAction' was unexpected" in f.problem) for f in findings] == [
        ("spec", True)
    ]


def test_a_private_key_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "k").write_text("-----BEGIN PRIVATE KEY-----\n")
    with pytest.raises(SystemExit) as exited:
        main(
            [
                "deploy",
                "policies",
                "--key",
                str(tmp_path / "k"),
                "--registry",
                REGISTRY,
                "-o",
                str(tmp_path / "o"),
            ]
        )
    assert exited.value.code == 2
    assert "not a PEM public key" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
