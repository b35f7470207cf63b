"""`socle deploy render`'s orchestration: resolve, trust, render, then write.

The image a description names is resolved to the digest the registry holds
now, and used only if socle's signature on that digest verifies with the
configured key and the gate records on its manifest say it passed. Every
check runs before the first file is written: a failed render writes nothing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from socle import atomic
from socle.core.catalog import Catalog
from socle.core.state import Published
from socle.deploy import render
from socle.deploy.spec import Spec
from socle.errors import GateFailed, InputError, SocleError
from socle.oci.reference import Reference
from socle.registry.client import RegistryClient
from socle.registry.state import RegistryState
from socle.signing.keys import PublicKey
from socle.signing.verify import verify

FAILED_TESTS_RE = re.compile(r"\b[1-9]\d* (failed|error)\b")


@dataclass(frozen=True)
class TrustedImage:
    """A digest socle verified: signed with the key, published with passing gates."""

    ref: str  # registry/repo@sha256:...
    tag_ref: str  # what it was resolved from
    signature: str  # the verifier's one-line reason


def trusted_image(
    spec: Spec, catalog: Catalog, public_key: PublicKey, *, client: RegistryClient
) -> TrustedImage:
    """The verified digest of the spec's image; GateFailed naming the image and why not."""
    tag_ref = f"{catalog.registry}/{spec.repository}:{spec.tag}"
    published = RegistryState(client).lookup([tag_ref])[tag_ref]
    if published is None:
        raise GateFailed(
            f"{tag_ref} is not published: nothing to deploy for {spec.app}",
            hint=f"publish it with `socle build {spec.variant}`",
        )
    digest_ref = str(Reference.parse(tag_ref).with_digest(published.digest))
    problem = gate_problem(published, catalog)
    if problem:
        raise GateFailed(f"{digest_ref} ({tag_ref}) {problem}", hint="rebuild it with socle build")
    result = verify(client, Reference.parse(digest_ref), public_key)
    if not result.valid:
        raise GateFailed(
            f"{digest_ref} ({tag_ref}) is not signed with the configured key: {result.reason}",
            hint="sign it with `socle sign --key KEY`, or pass the key it was signed with",
        )
    check_volumes(spec, image_volumes(client, Reference.parse(digest_ref)))
    return TrustedImage(ref=digest_ref, tag_ref=tag_ref, signature=result.reason)


def image_volumes(client: RegistryClient, ref: Reference) -> list[str]:
    """The `VOLUME` paths of the image's config (empty for an index or no volume)."""
    manifest = client.get_manifest(ref)
    blobs = manifest.blobs()
    if not blobs:
        return []
    try:
        config = json.loads(client.get_blob(ref, blobs[0].digest))
        volumes = (config.get("config") or {}).get("Volumes") or {}
        return sorted(str(path) for path in volumes)
    except (ValueError, AttributeError, TypeError):
        return []  # a config socle cannot read declares no volume it could honour


def check_volumes(spec: Spec, volumes: list[str]) -> None:
    """Refuse a writable path or config file that lands on, in or over one of the image's volumes.

    A runtime mounts an anonymous volume at each `VOLUME` path, so an emptyDir or a
    config file there would shadow it, or be shadowed, depending on the runtime.
    """
    mine = [(path, "writable path") for path in spec.writable]
    mine += [(c.path, "config file") for c in spec.config]
    for path, what in mine:
        for volume in volumes:
            if overlaps(path, volume):
                raise InputError(
                    f"{spec.path}: {what} {path} collides with the image's volume {volume}",
                    hint="write elsewhere, or drop the VOLUME from the image's Dockerfile",
                )


def overlaps(one: str, other: str) -> bool:
    a, b = one.rstrip("/") or "/", other.rstrip("/") or "/"
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def gate_problem(published: Published, catalog: Catalog) -> str | None:
    """Why socle's records on the manifest do not show a passed image, or None."""
    if published.fingerprint is None:
        return "was not published by socle (no gate records on its manifest)"
    gates = dict(published.gates)
    if "tests" in gates and FAILED_TESTS_RE.search(gates["tests"]):
        return f"failed its image tests ({gates['tests']})"
    if "sbom" not in gates:
        return "has no SBOM record: its gates did not run"
    if catalog.policy is not None and catalog.policy.require_scan and "scan" not in gates:
        return "was not scanned, and the catalog's policy requires a scan"
    return None


def render_files(spec: Spec, image: TrustedImage, env: str | None) -> dict[str, str]:
    """The kustomize layout: base and every overlay, or only `env`'s overlay with the base."""
    files = render.layout(spec, image.ref)
    if env is None:
        return files
    render.objects(spec, image.ref, env)  # InputError naming the known environments
    prefix = f"overlays/{env}/"
    return {p: t for p, t in files.items() if p.startswith(("base/", prefix))}


def write(files: dict[str, str], out: Path) -> list[Path]:
    """Each file atomically under `out`; SocleError when a folder cannot be written."""
    written = []
    for relative, text in sorted(files.items()):
        path = out / relative
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic.write_text(path, text)
        except OSError as exc:
            raise SocleError(f"cannot write {path}: {exc.strerror}", hint="pass -o DIR") from None
        written.append(path)
    return written
