"""`socle rebuild --verify`: build a published image again from what it records, compare.

A socle image records how it was built: its fingerprint inputs (the digests of
its Dockerfile, context and build arguments), its parent by digest, its exact
tag and the SOURCE_DATE_EPOCH of a reproducible build, as labels of its config
(and annotations of its manifest). The rebuild checks that the catalog's inputs
are still those, builds them on the recorded parent with the recorded epoch and
labels, and compares the config and every layer with the published ones.
With buildah, apt in the rebuild's RUN steps is pinned to the Debian package
versions the published image holds (its dpkg database, the inventory its SBOM
lists), so a mirror that still serves them gives the same packages back.

The manifest's own annotations (the gates' records, the publication time) are
not build output, so "the same image" means the same config and the same layers:
the rebuilt manifest carrying the published annotations is then the published one.
"""

from __future__ import annotations

import json
import secrets
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from socle import process
from socle.builders import BuildRequest
from socle.builders.interface import BASE_ARG, EPOCH_LABEL, Builder
from socle.core.catalog import Catalog, Kind
from socle.core.convention import Variant
from socle.core.graph import Graph
from socle.core.platforms import arch_of, platform_of
from socle.core.state import FINGERPRINT, INPUTS
from socle.emulation import require_emulation
from socle.errors import InputError, SocleError
from socle.executor import insecure
from socle.inputs import InputReader
from socle.localimage import DEFAULT_PLATFORM, pull_layout, restore_parent_blobs
from socle.oci.content import Descriptor
from socle.oci.layerdiff import changes, layer_entries, order_differs
from socle.oci.layout import LayoutImage, read_image_layout
from socle.oci.media import BASE_DIGEST, BASE_NAME, CREATED, REF_NAME, REVISION, SOURCE, VERSION
from socle.oci.reference import Reference
from socle.registry.interface import ImageSource
from socle.sbom import inventory
from socle.sbom.model import Ecosystem

# The labels the executor gives every build (see `Executor.annotations`), passed again.
RECORDED_LABELS = (FINGERPRINT, INPUTS, CREATED, VERSION, REF_NAME, SOURCE, REVISION)
SHOWN_CHANGES = 25
DIFFOSCOPE_LINES = 60
DIFFOSCOPE_SECONDS = 300  # a big layer's report is not worth more; the file summary stays
PINNING_BUILDERS = ("buildah",)  # can mount the pins into RUN steps (`docker build` cannot)
PINS_FILE = "socle-rebuild-pins"

Diffoscope = Callable[[Path, Path], str | None]


class NotReproduced(SocleError):
    """The rebuild differs from the published image; the message says where and how."""


@dataclass(frozen=True)
class Recorded:
    """What a published image says about its own build."""

    ref: Reference  # pinned to the image manifest's digest
    labels: Mapping[str, str]
    epoch: int
    parent: str  # the BASE_IMAGE the build was given: registry/repository@digest
    inputs: Mapping[str, str]
    parent_recorded_as: str | None = None  # the parent's name in its history's "FROM" comment

    @classmethod
    def of(cls, ref: Reference, image: LayoutImage) -> Recorded:
        """Read the records of the pulled image `image`; InputError when it has none."""
        labels = _labels(image.config)
        annotations = image.manifest.json().get("annotations") or {}
        records = {**labels, **{str(k): str(v) for k, v in dict(annotations).items()}}
        if FINGERPRINT not in records:
            raise InputError(
                f"{ref} is not an image socle built (it has no {FINGERPRINT} label)",
                hint="give the exact tag or digest of an image `socle build` published",
            )
        if EPOCH_LABEL not in labels:
            raise InputError(
                f"{ref} records no SOURCE_DATE_EPOCH ({EPOCH_LABEL}): it was not built"
                " reproducibly, so no rebuild can match it",
                hint="rebuild it with a socle that builds reproducibly, then verify that image",
            )
        if BASE_DIGEST not in records or BASE_NAME not in records:
            raise InputError(
                f"{ref} records no parent: only images built from a Dockerfile can be rebuilt",
                hint="an OS image is checked by bench/reproducibility.py (two bootstraps)",
            )
        base = Reference.parse(records[BASE_NAME])
        try:
            epoch = int(labels[EPOCH_LABEL])
            inputs = {str(k): str(v) for k, v in json.loads(records.get(INPUTS, "{}")).items()}
        except (ValueError, AttributeError) as exc:
            raise InputError(f"{ref}: socle's records on it are damaged ({exc})") from None
        parent = f"{base.registry}/{base.repository}@{records[BASE_DIGEST]}"
        # Since builds start on a local copy of a parent of the same run, buildah's
        # comment on the first step built on the parent names it by its published
        # name, not by digest; an image built before says the digest it was given.
        history = image.config.get("history")
        comments = (
            {e.get("comment") for e in history if isinstance(e, dict)}
            if isinstance(history, list)
            else set()
        )
        named = records[BASE_NAME] if f"FROM {records[BASE_NAME]}" in comments else None
        return cls(ref.with_digest(image.digest), labels, epoch, parent, inputs, named)


@dataclass(frozen=True)
class Verdict:
    """The outcome of a verified rebuild: one line when equal, a report when not."""

    ref: Reference
    same: bool
    lines: tuple[str, ...]


def verify_rebuild(
    catalog: Catalog,
    graph: Graph,
    source: ImageSource,
    builder: Builder,
    ref_text: str,
    *,
    work: Path,
    platform: str = DEFAULT_PLATFORM,
    diffoscope: Diffoscope | None = None,
) -> Verdict:
    """Rebuild the published image `ref_text` in `work` and compare it with the published one.

    Raises NotReproduced (exit 1) naming the first differing layer and its files,
    InputError for a reference that is not a socle build, and the registry's
    errors when it cannot be read.
    """
    ref = Reference.parse(ref_text)
    published = read_image_layout(
        pull_layout(source, ref, work / "published", platform=platform).layout
    )
    recorded = Recorded.of(ref, published)
    variant = _variant(graph, ref, recorded)
    _check_inputs(variant, recorded)
    pins = _pins(published, work) if builder.name in PINNING_BUILDERS else None
    rebuilt = _rebuild(
        catalog, variant, recorded, builder, work, pins, _build_platform(variant, published)
    )
    # As `socle build` does: the parent's layers are its published blobs, not the builder's
    # recompression of them (the same diff_ids), so only the build's own layers can differ.
    restore_parent_blobs(source, Reference.parse(recorded.parent), rebuilt.path)
    rebuilt = read_image_layout(rebuilt.path)
    lines = compare(published, rebuilt, diffoscope=diffoscope)
    if not lines:
        return Verdict(
            recorded.ref,
            True,
            (
                f"{ref}: reproduced: the rebuild has the published config and layers"
                f" ({published.digest})",
            ),
        )
    lines += _package_changes(published, rebuilt)
    raise NotReproduced("\n".join([f"{ref}: not reproduced ({published.digest})", *lines]))


def compare(
    published: LayoutImage, rebuilt: LayoutImage, *, diffoscope: Diffoscope | None = None
) -> list[str]:
    """Lines saying how `rebuilt` differs from `published`; none when they are the same."""
    old, new = published.layers, rebuilt.layers
    for index, (was, now) in enumerate(zip(old, new, strict=False)):
        if was.digest != now.digest:
            if published.diff_ids[index : index + 1] == rebuilt.diff_ids[index : index + 1]:
                return [
                    f"layer {index + 1} of {len(old)} has the same content (diff_id"
                    f" {published.diff_ids[index][:19]}) compressed otherwise: published"
                    f" {_short(was)}, rebuilt {_short(now)}"
                ]
            return _layer_report(published, rebuilt, index, diffoscope)
    if len(old) != len(new):
        return [f"the rebuild has {len(new)} layers, the published image {len(old)}"]
    if published.config_descriptor.digest != rebuilt.config_descriptor.digest:
        return ["every layer is the same; the config differs:", *_config_report(published, rebuilt)]
    return []


def _variant(graph: Graph, ref: Reference, recorded: Recorded) -> Variant:
    tag = recorded.labels.get(REF_NAME) or ref.tag
    for variant in graph.variants:
        if variant.image.repository == ref.repository and variant.exact_tag == tag:
            if variant.image.kind is not Kind.BUILD:
                raise InputError(f"{ref} is not built from a Dockerfile in the catalog")
            return variant
    raise InputError(
        f"{ref}: the catalog has no variant {ref.repository}:{tag} to rebuild it from",
        hint="give the catalog it was built from with -c",
    )


def _check_inputs(variant: Variant, recorded: Recorded) -> None:
    current = dict(InputReader().components(variant))
    differ = sorted(
        k for k in set(current) | set(recorded.inputs) if current.get(k) != recorded.inputs.get(k)
    )
    if differ:
        revision = recorded.labels.get(REVISION)
        raise NotReproduced(
            f"{recorded.ref}: the catalog's {', '.join(differ)} of {variant.key}"
            f" {'differs' if len(differ) == 1 else 'differ'} from what the image was built from",
            hint=f"check out revision {revision} and verify again" if revision else None,
        )


def _build_platform(variant: Variant, published: LayoutImage) -> str | None:
    """The `--platform` to rebuild `published` with: the one `socle build` gave its build.

    socle passes a platform to every build of an image whose catalog declares
    architectures (see `Executor._build`), the published image's own; a foreign
    one runs under emulation, checked first like a build's.
    """
    if not variant.version.architectures:
        return None
    config = published.config
    arch = arch_of(str(config.get("architecture", "")), str(config.get("variant", "")))
    if arch is None:
        raise InputError(
            f"{published.digest}: socle knows no Debian architecture for the image's"
            f" {config.get('architecture')!r}"
        )
    require_emulation(arch)
    return platform_of(arch)


def _rebuild(
    catalog: Catalog,
    variant: Variant,
    recorded: Recorded,
    builder: Builder,
    work: Path,
    pins: Path | None,
    platform: str | None,
) -> LayoutImage:
    version = variant.version
    assert version.context is not None and version.dockerfile is not None
    name = f"socle-rebuild/{variant.image.name}:{variant.exact_tag}-{secrets.token_hex(4)}"
    labels = {
        k: recorded.labels[k]
        for k in (*RECORDED_LABELS, BASE_NAME, BASE_DIGEST)
        if k in recorded.labels
    }
    request = BuildRequest(
        context=version.context,
        dockerfile=version.dockerfile,
        build_args={**dict(version.build_args), BASE_ARG: recorded.parent},
        labels=labels,
        name=name,
        output=work / "rebuilt",
        insecure_registries=insecure(recorded.ref.registry) or insecure(catalog.registry),
        source_date_epoch=recorded.epoch,
        base_recorded_as=recorded.parent_recorded_as,
        apt_preferences=pins,
        platform=platform,
    )
    try:
        return read_image_layout(builder.build(request).layout)
    finally:
        builder.remove(name)


def apt_pins(versions: Mapping[str, str]) -> str:
    """An apt_preferences(5) file holding each package at its version (priority 1001).

    Priority 1001 makes apt install that version even when the archive has a newer
    one; a version the archive no longer has pins nothing, and the rebuild then
    installs the current one, which the report names among the packages that differ.
    """
    return "\n".join(
        f"Package: {name}\nPin: version {version}\nPin-Priority: 1001\n"
        for name, version in sorted(versions.items())
    )


def _pins(published: LayoutImage, work: Path) -> Path | None:
    """The folder to mount as /etc/apt/preferences.d, or None when nothing is to pin."""
    try:
        packages = inventory(published.path).packages
    except SocleError:
        return None
    versions = {p.name: p.version for p in packages if p.ecosystem is Ecosystem.DEB}
    if not versions:
        return None
    folder = work / "apt-preferences.d"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / PINS_FILE).write_text(apt_pins(versions))
    return folder


def _layer_report(
    published: LayoutImage, rebuilt: LayoutImage, index: int, diffoscope: Diffoscope | None
) -> list[str]:
    was, now = published.layers[index], rebuilt.layers[index]
    lines = [
        f"layer {index + 1} of {len(published.layers)} differs: published {_short(was)},"
        f" rebuilt {_short(now)}"
    ]
    old_path, new_path = published.blob_path(was.digest), rebuilt.blob_path(now.digest)
    old, new = layer_entries(old_path), layer_entries(new_path)
    found = changes(old, new)
    counts = {
        what: sum(1 for c in found if c.what == what) for what in ("added", "removed", "changed")
    }
    lines.append(", ".join(f"{n} {what}" for what, n in counts.items()) + " paths")
    lines += [f"  {change.describe()}" for change in found[:SHOWN_CHANGES]]
    if len(found) > SHOWN_CHANGES:
        lines.append(f"  ... and {len(found) - SHOWN_CHANGES} more")
    if not found and order_differs(list(old), list(new)):
        lines.append("  the same files in another order")
    if diffoscope is not None and found:  # else its report is a hex dump of the whole layer
        report = diffoscope(old_path, new_path)
        if report:
            shown = report.splitlines()
            lines.append("diffoscope:")
            lines += [f"  {line}" for line in shown[:DIFFOSCOPE_LINES]]
            if len(shown) > DIFFOSCOPE_LINES:
                lines.append(f"  ... ({len(shown) - DIFFOSCOPE_LINES} more lines)")
    return lines


def _config_report(published: LayoutImage, rebuilt: LayoutImage) -> list[str]:
    """The config's differing fields (inside `config`, field by field)."""
    old, new = published.config, rebuilt.config
    pairs = [
        (f"  {k}", old.get(k), new.get(k)) for k in sorted(set(old) | set(new)) if k != "config"
    ]
    inner_old, inner_new = old.get("config") or {}, new.get("config") or {}
    pairs += [
        (f"  config.{k}", inner_old.get(k), inner_new.get(k))
        for k in sorted(set(inner_old) | set(inner_new))
    ]
    return [_field_change(name, was, now) for name, was, now in pairs if was != now]


def _field_change(name: str, was: object, now: object) -> str:
    """`name: old -> new`; for two lists, their first differing item only."""
    if isinstance(was, list) and isinstance(now, list):
        for index, (one, two) in enumerate(zip(was, now, strict=False)):
            if one != two:
                return f"{name}[{index}]: {_cut(one)} -> {_cut(two)}"
        return f"{name}: {len(was)} items -> {len(now)} items"
    return f"{name}: {_cut(was)} -> {_cut(now)}"


def _package_changes(published: LayoutImage, rebuilt: LayoutImage) -> list[str]:
    """Package versions that moved between the two (the archive moves on)."""
    try:
        old = {(p.ecosystem.value, p.name): p.version for p in inventory(published.path).packages}
        new = {(p.ecosystem.value, p.name): p.version for p in inventory(rebuilt.path).packages}
    except SocleError:
        return []
    moved = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if not moved:
        return []
    return ["packages that differ:"] + [
        f"  {name}: {old.get((eco, name), 'absent')} -> {new.get((eco, name), 'absent')}"
        for eco, name in moved[:SHOWN_CHANGES]
    ]


def run_diffoscope(old: Path, new: Path) -> str | None:
    """diffoscope's text report of two layer blobs, when diffoscope is installed."""
    if shutil.which("diffoscope") is None:
        return None
    command = ["diffoscope", "--no-progress", "--text", "-", str(old), str(new)]
    try:
        return process.run(command, timeout=DIFFOSCOPE_SECONDS).stdout
    except process.CommandError as exc:  # exit 1: differences found, the report is on stdout
        return exc.stdout if exc.returncode == 1 else None  # else failed or timed out


def _labels(config: Mapping[str, Any]) -> dict[str, str]:
    raw = (config.get("config") or {}).get("Labels") or {}
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}


def _short(descriptor: Descriptor) -> str:
    return f"{descriptor.digest[:19]} ({descriptor.size} bytes)"


def _cut(value: object, limit: int = 240) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."
