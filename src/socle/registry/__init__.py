"""socle's own OCI distribution client (see :class:`RegistryClient`)."""

from __future__ import annotations

from socle.registry.auth import (
    Anonymous,
    Credential,
    CredentialSource,
    DockerConfig,
    StaticCredentials,
)
from socle.registry.client import BlobSource, RegistryClient
from socle.registry.errors import (
    AuthenticationFailed,
    DigestMismatch,
    InvalidManifest,
    ManifestNotFound,
    RegistryError,
    RegistryFailure,
    RegistryUnreachable,
)
from socle.registry.manifest import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    MANIFEST_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    Manifest,
)
from socle.registry.reference import Reference

__all__ = [
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "MANIFEST_TYPES",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "Anonymous",
    "AuthenticationFailed",
    "BlobSource",
    "Credential",
    "CredentialSource",
    "Descriptor",
    "DigestMismatch",
    "DockerConfig",
    "InvalidManifest",
    "Manifest",
    "ManifestNotFound",
    "Reference",
    "RegistryClient",
    "RegistryError",
    "RegistryFailure",
    "RegistryUnreachable",
    "StaticCredentials",
]
