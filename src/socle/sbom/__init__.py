"""Software bills of materials: inventory an image from its layers, write CycloneDX.

:func:`inventory` reads an OCI layout without running the image;
:func:`to_cyclonedx` renders the result as CycloneDX 1.6 JSON. Both load their
modules on first use, so importing the value types stays cheap for the core.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from socle.sbom.model import Distro, Ecosystem, Inventory, Package

if TYPE_CHECKING:
    from socle.sbom.cache import LayerCache

__all__ = ["Distro", "Ecosystem", "Inventory", "Package", "inventory", "to_cyclonedx"]


def inventory(layout_dir: Path, cache: LayerCache | None = None) -> Inventory:
    """Inventory the image of the OCI layout at `layout_dir` without running it.

    Reads the dpkg database (and distroless `status.d/`), copyright files,
    os-release, jar manifests and Python `*.dist-info/METADATA` from the layers,
    applying whiteouts, without extracting anything to disk. With `cache`, a
    layer read before (by its digest, by any image) is not read again.
    """
    from socle.sbom.contents import inventory as read_inventory

    return read_inventory(layout_dir, cache)


def to_cyclonedx(inventory: Inventory, image_ref: str, digest: str) -> str:
    """The CycloneDX 1.6 JSON SBOM of the image `image_ref` at `digest`."""
    from socle.sbom.bom import to_cyclonedx as render

    return render(inventory, image_ref, digest)
