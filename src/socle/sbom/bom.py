"""An inventory as a CycloneDX 1.6 JSON document, with package URLs per the purl spec."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from cyclonedx.model import Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.component_evidence import ComponentEvidence, Occurrence
from cyclonedx.model.license import DisjunctiveLicense
from cyclonedx.output import make_outputter
from cyclonedx.schema import OutputFormat, SchemaVersion
from cyclonedx.spdx import fixup_id
from packageurl import PackageURL

from socle import __version__
from socle.oci.reference import Reference
from socle.sbom.model import Distro, Ecosystem, Inventory, Package

SCHEMA_VERSION = SchemaVersion.V1_6
# The source package of a Debian binary package: the purl spec's deb type has no
# qualifier for it (a source package is its own purl, `?arch=source`), so it is
# recorded as properties, the source purl included.
SOURCE_NAME = "socle:deb:source_name"
SOURCE_VERSION = "socle:deb:source_version"
SOURCE_PURL = "socle:deb:source_purl"


def purl(package: Package, distro: Distro | None) -> PackageURL:
    """The package URL of `package` (deb, maven or generic for jars, pypi)."""
    if package.ecosystem is Ecosystem.DEB:
        return _deb_purl(package.name, package.version, package.arch, distro)
    version = package.version or None
    if package.ecosystem is Ecosystem.PYTHON:
        return PackageURL(type="pypi", name=package.name, version=version)
    if package.group:
        return PackageURL(type="maven", namespace=package.group, name=package.name, version=version)
    return PackageURL(type="generic", name=package.name, version=version)


def source_purl(package: Package, distro: Distro | None) -> PackageURL:
    """The purl of a Debian package's source package (`arch=source`)."""
    return _deb_purl(package.source_name, package.source_version, "source", distro)


def _deb_purl(name: str, version: str, arch: str | None, distro: Distro | None) -> PackageURL:
    qualifiers = {"arch": arch} if arch else {}
    if distro:
        qualifiers["distro"] = distro.label
    vendor = distro.id if distro else "debian"
    return PackageURL(
        type="deb", namespace=vendor, name=name.lower(), version=version, qualifiers=qualifiers
    )


def image_purl(image_ref: str, digest: str, architecture: str | None = None) -> PackageURL:
    """`pkg:oci/NAME@sha256:...?repository_url=REGISTRY/REPO[&tag=TAG][&arch=ARCH]`."""
    ref = Reference.parse(image_ref)
    qualifiers = {"repository_url": ref.name}
    if ref.tag:
        qualifiers["tag"] = ref.tag
    if architecture:
        qualifiers["arch"] = architecture
    name = ref.repository.rsplit("/", 1)[-1].lower()
    return PackageURL(type="oci", name=name, version=digest, qualifiers=qualifiers)


def licences(names: Iterable[str]) -> list[DisjunctiveLicense]:
    """SPDX ids where a name is one (any case), the name as written otherwise."""
    result = []
    for name in names:
        spdx_id = fixup_id(name)
        result.append(DisjunctiveLicense(id=spdx_id) if spdx_id else DisjunctiveLicense(name=name))
    return result


def to_cyclonedx(inventory: Inventory, image_ref: str, digest: str) -> str:
    """The CycloneDX JSON SBOM of the image `image_ref` at `digest`."""
    image = Component(
        type=ComponentType.CONTAINER,
        name=Reference.parse(image_ref).name,
        version=digest,
        purl=image_purl(image_ref, digest, inventory.architecture),
        bom_ref=str(image_purl(image_ref, digest, inventory.architecture)),
    )
    bom = Bom()
    bom.metadata.component = image
    bom.metadata.tools.components.add(
        Component(type=ComponentType.APPLICATION, name="socle", version=__version__)
    )
    parts = list(_components(inventory))
    for part in parts:
        bom.components.add(part)
    bom.register_dependency(image, parts)
    return make_outputter(bom, OutputFormat.JSON, SCHEMA_VERSION).output_as_string(indent=2)


def _components(inventory: Inventory) -> Iterator[Component]:
    if inventory.distro:
        yield _os_component(inventory.distro)
    seen: set[str] = set()
    for package in inventory.packages:
        ref = str(purl(package, inventory.distro))
        unique = ref if ref not in seen else f"{ref}#{package.path}"
        seen.add(unique)
        yield _component(package, inventory.distro, unique)


def _os_component(distro: Distro) -> Component:
    return Component(
        type=ComponentType.OPERATING_SYSTEM,
        name=distro.id,
        version=distro.version_id or distro.codename,
        description=distro.pretty_name,
        bom_ref=f"os:{distro.label}",
    )


def _component(package: Package, distro: Distro | None, ref: str) -> Component:
    properties = []
    if package.ecosystem is Ecosystem.DEB:
        properties = [
            Property(name=SOURCE_NAME, value=package.source_name),
            Property(name=SOURCE_VERSION, value=package.source_version),
            Property(name=SOURCE_PURL, value=str(source_purl(package, distro))),
        ]
    evidence = (
        ComponentEvidence(occurrences=[Occurrence(location=package.path)]) if package.path else None
    )
    return Component(
        type=ComponentType.LIBRARY,
        name=package.name,
        group=package.group,
        version=package.version or None,
        purl=purl(package, distro),
        bom_ref=ref,
        licenses=licences(package.licences),
        properties=properties,
        evidence=evidence,
    )
