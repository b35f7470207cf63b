"""Make a built image's own layers reproducible, whatever builder wrote them.

Two builds of the same Dockerfile on the same parent differ in what the build
tools leave behind (apt's and dpkg's logs, apt's caches, ldconfig's aux-cache),
in file times (every file written during the build has "now" as its mtime) and
in the config's dates. :func:`normalise_layout` rewrites the layers a build
added to an OCI layout: noise files dropped, every mtime clamped to
SOURCE_DATE_EPOCH, PAX times dropped, gzip with mtime 0 at a fixed level; then
the config (`created`, history dates clamped), the manifest and `index.json`.
A Java keystore sealed with its well-known password (ca-certificates-java's
`cacerts`) has its entry dates clamped the same way (:mod:`socle.builders.keystore`).

The parent's layers are never touched: they stay byte for byte the blobs the
parent published, so a registry mounts them instead of storing a copy.
Member order, owners, modes, link targets, xattrs (file capabilities) and
whiteouts are kept as the builder wrote them: only what carries no meaning is
changed. `.pyc` files are kept (clamped like every file): they are what dpkg's
postinst scripts compiled, and dropping them would make every Python start
recompile into root-owned folders it cannot write as a non-root user.
"""

from __future__ import annotations

import fnmatch
import io
import json
import re
import tarfile
import tempfile
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from socle.builders.interface import BuildRequest
from socle.builders.keystore import clamp_jks, looks_like_keystore
from socle.canonical import canonical_json
from socle.errors import SocleError
from socle.oci.content import Descriptor
from socle.oci.layerdiff import open_layer
from socle.oci.layout import (
    LayoutImage,
    blob_path,
    index_descriptor,
    read_image_layout,
    write_blob,
    write_index,
    write_layer_blob,
)
from socle.oci.media import BASE_DIGEST, BASE_NAME, OCI_CONFIG
from socle.timestamps import rfc3339

# Files a build leaves behind that say only when and how it ran (paths without a leading "/").
NOISE: tuple[str, ...] = (
    "var/log/dpkg.log",
    "var/log/alternatives.log",
    "var/log/apt/*",
    "var/cache/ldconfig/aux-cache",
    "var/lib/apt/lists/*",
    "var/cache/apt/*.bin",
    "var/cache/debconf/*-old",
    # systemd's postinst writes a random machine id; machine-id(5): an image meant
    # for many machines has it missing or empty, each system then gets its own.
    "etc/machine-id",
)
# PAX records that carry meaning (extended attributes such as file capabilities);
# times (mtime, atime, ctime with sub-second precision) are dropped.
_KEPT_PAX = ("SCHILY.xattr.", "LIBARCHIVE.xattr.")
_WHITEOUT = ".wh."
_BASE_KEYS = frozenset({BASE_NAME, BASE_DIGEST})
_LOCAL_IMAGE_ID = re.compile(r"FROM [0-9a-f]{12,64}")
_KEYSTORE_MAX = 16 << 20  # a larger file named like a keystore is streamed as it is


class NormaliseError(SocleError):
    """A layout could not be normalised (an unreadable layer, an unknown compression)."""


@dataclass(frozen=True)
class Normalised:
    """What :func:`normalise_layout` did: the new manifest digest and what it dropped."""

    digest: str
    dropped: tuple[str, ...]
    """The noise paths removed from the build's own layers, in layer order."""
    empty_layers: int
    """Layers that held only noise and were removed (their history entry marked empty)."""
    clamped: tuple[str, ...] = ()
    """The Java keystores whose entry dates were clamped to SOURCE_DATE_EPOCH."""


def is_noise(name: str, patterns: Sequence[str] = NOISE) -> bool:
    """Whether the tar member `name` matches one of `patterns` (whiteouts never do)."""
    path = _path(name)
    if path.rsplit("/", 1)[-1].startswith(_WHITEOUT):
        return False  # a deletion of the parent's file is meaning, not noise
    return any(fnmatch.fnmatchcase(path, pattern) for pattern in patterns)


def _path(name: str) -> str:
    return name.removeprefix("./").lstrip("/")


def normalise_layout(
    layout: Path,
    *,
    epoch: int,
    keep: int,
    noise: Iterable[str] | None = None,
    renamed: Mapping[str, str] | None = None,
    unlabelled: Collection[str] = (),
) -> Normalised:
    """Rewrite the layers above the bottom `keep` ones (the parent's) of `layout`'s image.

    `epoch` is SOURCE_DATE_EPOCH: later mtimes and dates become it. `noise`
    replaces :data:`NOISE` when given. `renamed` maps a base image's name as the
    builder wrote it in a history comment ("FROM NAME") to the name recorded
    instead. The config labels named in `unlabelled` go. Running it twice gives
    the same digest.
    """
    image = read_image_layout(layout)
    patterns = NOISE if noise is None else tuple(noise)
    if keep < 0 or keep > len(image.layers):
        raise NormaliseError(
            f"{layout}: cannot keep {keep} parent layers of an image with {len(image.layers)}"
        )
    diff_ids = list(image.diff_ids)
    if len(diff_ids) != len(image.layers):
        raise NormaliseError(
            f"{layout}: the config lists {len(diff_ids)} diff_ids for {len(image.layers)} layers"
        )
    layers: list[Descriptor] = list(image.layers[:keep])
    kept_ids: list[str] = diff_ids[:keep]
    dropped: list[str] = []
    clamped: list[str] = []
    emptied: list[int] = []  # indexes (among all layers) of layers that became empty
    with tempfile.TemporaryDirectory(prefix=".normalise-", dir=layout) as tmp:
        for index in range(keep, len(image.layers)):
            tar = Path(tmp) / f"{index}.tar"
            before = len(dropped)
            members = _rewrite_layer(
                image, image.layers[index], tar, epoch, patterns, dropped, clamped
            )
            if members == 0 and len(dropped) > before:
                emptied.append(index)  # held only noise
            descriptor, diff_id = write_layer_blob(layout, tar)
            layers.append(_with_annotations(descriptor, image.layers[index].annotations))
            kept_ids.append(diff_id)
    config = dict(image.config)
    removable = _removable(config, emptied, len(image.layers))
    if removable:
        config["history"] = _mark_empty(config["history"], removable)
        layers = [d for i, d in enumerate(layers) if i not in removable]
        kept_ids = [d for i, d in enumerate(kept_ids) if i not in removable]
    config["rootfs"] = {"type": "layers", "diff_ids": kept_ids}
    config["created"] = rfc3339(epoch)
    config = _without_labels(config, unlabelled)
    if isinstance(config.get("history"), list):
        config["history"] = [
            _clamped_history(entry, epoch, renamed or {}) for entry in config["history"]
        ]
    digest = _write_manifest(layout, image, config, layers)
    _remove_orphans(layout, image)
    return Normalised(digest, tuple(dropped), len(removable), tuple(clamped))


def reproduce(
    layout: Path,
    *,
    epoch: int,
    base_diff_ids: Sequence[str],
    base: str | None = None,
    base_recorded_as: str | None = None,
    unlabelled: Collection[str] = (),
) -> Normalised:
    """Normalise the layers a build added on top of the parent whose layers are `base_diff_ids`.

    The parent's layers are the bottom ones the image shares with it, by diff_id
    (a multi-stage build's last stage may start from another image: then none).
    With `base_recorded_as`, the history comment buildah writes on the first step
    built on `base` ("FROM localhost/NAME") names `base_recorded_as` instead: a build
    on a local copy of the parent then records what a build on the published parent
    records, whatever the copy's name.
    """
    own = read_image_layout(layout).diff_ids
    keep = 0
    for mine, theirs in zip(own, base_diff_ids, strict=False):
        if mine != theirs:
            break
        keep += 1
    renamed = {}
    if base is not None and base_recorded_as is not None:
        renamed = dict.fromkeys((base, f"localhost/{base}"), base_recorded_as)
    return normalise_layout(layout, epoch=epoch, keep=keep, renamed=renamed, unlabelled=unlabelled)


def reproduce_build(request: BuildRequest, base_diff_ids: Sequence[str]) -> Normalised:
    """:func:`reproduce` of what a builder wrote for `request` (a reproducible build).

    socle records an image's parent in its manifest's annotations, not in its
    labels. A parent published by an earlier socle carries the base labels of
    its own parent in its config, and a child would inherit them, naming its
    grandparent: those go, unless the request sets them itself (a rebuild of
    an image published with them).
    """
    assert request.source_date_epoch is not None
    return reproduce(
        request.output,
        epoch=request.source_date_epoch,
        base_diff_ids=base_diff_ids,
        base=request.base,
        base_recorded_as=request.base_recorded_as,
        unlabelled=_BASE_KEYS - set(request.effective_labels()),
    )


def diff_ids_of(inspected: str, path: Sequence[str | int]) -> tuple[str, ...]:
    """The diff_ids at `path` in a builder's JSON description of an image."""
    try:
        found: Any = json.loads(inspected)
        for step in path:
            found = found[step]
        return tuple(str(d) for d in found or ())
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise NormaliseError(
            f"cannot read the parent's layers from the builder's description ({exc!r})"
        ) from None


# --- one layer ---------------------------------------------------------------------------


def _rewrite_layer(
    image: LayoutImage,
    layer: Descriptor,
    out: Path,
    epoch: int,
    patterns: Sequence[str],
    dropped: list[str],
    clamped: list[str],
) -> int:
    """Write the normalised tar of `layer` to `out`; return how many members it kept."""
    kept = 0
    gone: set[str] = set()
    with open_layer(image.blob_path(layer.digest)) as raw:
        try:
            with (
                tarfile.open(fileobj=raw, mode="r|") as source,
                tarfile.open(out, mode="w", format=tarfile.PAX_FORMAT) as target,
            ):
                for member in source:
                    name = _path(member.name)
                    if is_noise(name, patterns) or (
                        member.islnk() and _path(member.linkname) in gone
                    ):
                        gone.add(name)
                        dropped.append(name)
                        continue
                    data = source.extractfile(member) if member.isreg() else None
                    if data is not None and _keystore(name, member):
                        content = data.read()
                        fixed = clamp_jks(content, epoch)
                        if fixed is not None:
                            clamped.append(name)
                        data = io.BytesIO(content if fixed is None else fixed)
                    target.addfile(_normalised(member, epoch), data)
                    kept += 1
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise NormaliseError(f"layer {layer.digest} is not a readable tar: {exc}") from exc
    return kept


def _keystore(name: str, member: tarfile.TarInfo) -> bool:
    return member.size <= _KEYSTORE_MAX and looks_like_keystore(name)


def _normalised(member: tarfile.TarInfo, epoch: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(member.name)
    info.type = member.type
    info.size = member.size if member.isreg() else 0
    info.mode = member.mode
    info.uid, info.gid = member.uid, member.gid
    info.uname, info.gname = member.uname, member.gname
    info.linkname = member.linkname
    info.devmajor, info.devminor = member.devmajor, member.devminor
    info.mtime = min(int(member.mtime), epoch)
    info.pax_headers = {
        key: value for key, value in member.pax_headers.items() if key.startswith(_KEPT_PAX)
    }
    return info


# --- config, manifest, index -------------------------------------------------------------


def _removable(config: Mapping[str, Any], emptied: Sequence[int], count: int) -> set[int]:
    """The emptied layers that can go: only when each layer has its own history entry."""
    history = config.get("history")
    if not emptied or not isinstance(history, list):
        return set()
    with_layer = [e for e in history if isinstance(e, dict) and not e.get("empty_layer")]
    return set(emptied) if len(with_layer) == count else set()


def _mark_empty(history: list[Any], removable: set[int]) -> list[Any]:
    marked: list[Any] = []
    layer = 0
    for entry in history:
        if isinstance(entry, dict) and not entry.get("empty_layer"):
            if layer in removable:
                entry = {**entry, "empty_layer": True}
            layer += 1
        marked.append(entry)
    return marked


def _clamped_history(entry: Any, epoch: int, renamed: Mapping[str, str]) -> Any:
    """A history entry dated no later than `epoch` (the parent's older dates stay).

    buildah comments the first step of a stage built on another stage with that
    stage's local image id ("FROM 3684b562a749"), which changes with every build
    and means nothing elsewhere: such a comment says "FROM <stage>" instead. A
    comment naming a base image in `renamed` names its replacement.
    """
    if not isinstance(entry, dict):
        return entry
    comment = entry.get("comment")
    if isinstance(comment, str) and _LOCAL_IMAGE_ID.fullmatch(comment):
        entry = {**entry, "comment": "FROM <stage>"}
    elif isinstance(comment, str) and comment.startswith("FROM ") and comment[5:] in renamed:
        entry = {**entry, "comment": f"FROM {renamed[comment[5:]]}"}
    if not isinstance(entry.get("created"), str):
        return entry
    try:
        when = datetime.fromisoformat(entry["created"].replace("Z", "+00:00"))
    except ValueError:
        return {**entry, "created": rfc3339(epoch)}
    if when.tzinfo is None or when.timestamp() > epoch:
        return {**entry, "created": rfc3339(epoch)}
    return entry


def _without_labels(config: dict[str, Any], names: Collection[str]) -> dict[str, Any]:
    """`config` without the labels `names` (its runtime config copied, not changed)."""
    runtime = config.get("config")
    labels = runtime.get("Labels") if isinstance(runtime, dict) else None
    if not isinstance(runtime, dict) or not isinstance(labels, dict):
        return config
    if not any(name in labels for name in names):
        return config
    kept = {k: v for k, v in labels.items() if k not in names}
    return {**config, "config": {**runtime, "Labels": kept}}


def _with_annotations(descriptor: Descriptor, annotations: Mapping[str, str]) -> Descriptor:
    if not annotations:
        return descriptor
    return Descriptor(descriptor.media_type, descriptor.digest, descriptor.size, dict(annotations))


def _write_manifest(
    layout: Path, image: LayoutImage, config: Mapping[str, Any], layers: Sequence[Descriptor]
) -> str:
    config_desc = write_blob(
        layout, canonical_json(config), image.config_descriptor.media_type or OCI_CONFIG
    )
    doc = image.manifest.json()
    doc["config"] = config_desc.to_json()
    doc["layers"] = [layer.to_json() for layer in layers]
    # buildah names the last stage's base here; for a stage built on another stage
    # that is a local image that differs with every build. socle records the
    # parent itself (labels and the manifest annotations it pushes), so the
    # builder's own base annotations go, whatever the builder.
    kept = {k: v for k, v in (doc.get("annotations") or {}).items() if k not in _BASE_KEYS}
    if kept:
        doc["annotations"] = kept
    else:
        doc.pop("annotations", None)
    manifest_desc = write_blob(layout, canonical_json(doc), image.manifest.media_type)
    listed = index_descriptor(layout)
    write_index(
        layout,
        [
            Descriptor(
                listed.media_type,
                manifest_desc.digest,
                manifest_desc.size,
                dict(listed.annotations),
            )
        ],
    )
    return manifest_desc.digest


def _remove_orphans(layout: Path, before: LayoutImage) -> None:
    """Delete the blobs only the replaced manifest used (the layout keeps one image)."""
    after = read_image_layout(layout)
    if after.digest == before.digest:
        return
    used = {after.digest, *(blob.digest for blob in after.manifest.blobs())}
    for old in (before.digest, *(blob.digest for blob in before.manifest.blobs())):
        if old not in used:
            blob_path(layout, old).unlink(missing_ok=True)
