"""The bootstrapped root filesystem as a reproducible OCI image: its config and history."""

from __future__ import annotations

import re
from collections.abc import Mapping

from socle.bootstrap.spec import (
    DEFAULT_PATH,
    BootstrapSpec,
)
from socle.core.platforms import OCI_ARCH
from socle.timestamps import rfc3339


def image_config(spec: BootstrapSpec, epoch: int, labels: Mapping[str, str]) -> dict[str, object]:
    """The OCI image config of a bootstrapped image (rootfs is added by the layout writer)."""
    architecture, variant = OCI_ARCH[spec.effective_architecture()]
    created = rfc3339(epoch)
    runtime: dict[str, object] = {"Env": [f"PATH={DEFAULT_PATH}"], "Cmd": ["bash"]}
    if labels:
        runtime["Labels"] = dict(labels)
    config: dict[str, object] = {
        "architecture": architecture,
        "os": "linux",
        "created": created,
        "config": runtime,
        "history": [
            {"created": created, "created_by": _created_by(spec), "comment": "socle bootstrap"}
        ],
    }
    if variant:
        config["variant"] = variant
    return config


def _created_by(spec: BootstrapSpec) -> str:
    words = [
        "mmdebstrap",
        f"--variant={spec.variant}",
        f"--architectures={spec.effective_architecture()}",
        f"--components={','.join(spec.components)}",
    ]
    if spec.packages:
        words.append(f"--include={','.join(sorted(set(spec.packages)))}")
    return " ".join([*words, spec.suite])


def count_installed(status: str) -> int:
    """How many packages a dpkg status file lists as installed."""
    return sum(
        1
        for stanza in status.split("\n\n")
        if re.search(r"^Status: install ok installed$", stanza, re.MULTILINE)
    )
