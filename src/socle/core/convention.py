"""The naming convention: every variant of every image and the tags it gets.

An OS image `centos` version `7.5.1804` gets `7.5.1804`, `7.5`, `7`. A built image
`java` version `8` on that parent gets `8-centos7.5.1804`, `8-centos7.5`,
`8-centos7` — its version prefixes joined to each tag the parent variant holds.
A floating tag claimed by several variants goes to the best claim: one naming the
exact version first (so `8` never moves to version `8.1`), then one naming the
parent's exact tag, then the highest version by version order. Two exact claims on
one tag are a collision.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

from socle.core import versions
from socle.core.catalog import Catalog, Image, ParentRef, Version
from socle.core.nodes import Location, did_you_mean
from socle.core.platforms import DEFAULT_ARCH
from socle.errors import Problem


@dataclass(frozen=True)
class Variant:
    """One image to produce: an image version, on one parent variant (or on none)."""

    image: Image
    version: Version
    parent: Variant | None
    exact_tag: str
    tags: tuple[str, ...]  # every tag this variant holds, exact tag first
    order: tuple[object, ...]  # version order, then the parent's order

    @property
    def key(self) -> str:
        """`java:8-debian12`: the image name and its exact tag; unique in a catalog."""
        return f"{self.image.name}:{self.exact_tag}"

    def refs(self, registry: str) -> tuple[str, ...]:
        """Fully qualified references of every tag."""
        return tuple(f"{registry}/{self.image.repository}:{tag}" for tag in self.tags)

    def ref(self, registry: str, tag: str | None = None) -> str:
        return f"{registry}/{self.image.repository}:{tag or self.exact_tag}"

    @property
    def architectures(self) -> tuple[str, ...]:
        """The Debian architectures it is produced for, native first (see `Version`)."""
        if self.version.architectures:
            return self.version.architectures
        if self.version.bootstrap is not None:
            return (self.version.bootstrap.architecture,)
        return (DEFAULT_ARCH,)

    @property
    def multi_platform(self) -> bool:
        """Published as an OCI image index of one image per architecture."""
        return len(self.version.architectures) > 1

    @cached_property
    def suffixes(self) -> tuple[str, ...]:
        """The tags children join to their versions: all but the image-wide aliases."""
        return tuple(t for t in self.tags if t not in self.image.aliases)


class Claim(NamedTuple):
    """A variant's bid for a tag. Claims compare by rank: the best one is `max(claims)`."""

    names_version: bool  # the tag spells the variant's exact version (or an explicit alias)
    names_parent: bool  # the tag spells the parent's exact tag (or there is no parent)
    order: tuple[object, ...]
    draft: int  # index of the draft making the claim

    @property
    def exact(self) -> bool:
        return self.names_version and self.names_parent


Holders = dict[str, dict[str, tuple[Claim, "Draft"]]]  # repository -> tag -> winning claim


@dataclass(frozen=True)
class Draft:
    """A variant before tag resolution."""

    image: Image
    version: Version
    parent: Variant | None
    exact_tag: str
    order: tuple[object, ...]


def derive(catalog: Catalog, image_order: Sequence[str]) -> tuple[list[Variant], list[Problem]]:
    """Every variant of the catalog, parents before children, with final tags.

    `image_order` lists image names parents first (see :func:`socle.core.graph.image_order`).
    """
    problems: list[Problem] = []
    done: dict[str, list[Variant]] = {}
    claimed: Holders = {}
    for name in image_order:
        image = catalog.by_name[name]
        drafts = list(drafts_of(image, done, catalog, problems))
        done[name] = resolve(image, drafts, claimed, problems)
    return [v for name in image_order for v in done[name]], problems


def drafts_of(
    image: Image, done: dict[str, list[Variant]], catalog: Catalog, problems: list[Problem]
) -> Iterable[Draft]:
    for version in image.versions:
        if not version.parents:
            yield Draft(image, version, None, version.name, (versions.key(version.name),))
            continue
        for parent in resolve_parents(version, done, catalog, problems):
            if problem := missing_platforms(image, version, parent):
                problems.append(problem)
                continue
            exact = f"{version.name}-{parent.image.tag_name}{parent.exact_tag}"
            yield Draft(image, version, parent, exact, (versions.key(version.name), parent.order))


def missing_platforms(image: Image, version: Version, parent: Variant) -> Problem | None:
    """A version built for an architecture its parent variant is not published for."""
    wanted = version.architectures or (DEFAULT_ARCH,)
    missing = [arch for arch in wanted if arch not in parent.architectures]
    if not missing:
        return None
    return located(
        version.location,
        f"{image.name}:{version.name} is built for {', '.join(wanted)}, but its parent "
        f"{parent.key} only for {', '.join(parent.architectures)}: add "
        f"{', '.join(missing)} to the `architectures` of {parent.image.name}, "
        f"or leave {'it' if len(missing) == 1 else 'them'} out here",
    )


def resolve_parents(
    version: Version, done: dict[str, list[Variant]], catalog: Catalog, problems: list[Problem]
) -> list[Variant]:
    found: list[Variant] = []
    for ref in version.parents:
        matches = find_parent(ref, done, catalog, problems)
        found.extend(v for v in matches if v not in found)
    return found


def find_parent(
    ref: ParentRef, done: dict[str, list[Variant]], catalog: Catalog, problems: list[Problem]
) -> list[Variant]:
    if ref.image not in catalog.by_name:
        hint = did_you_mean(ref.image, sorted(catalog.by_name))
        problems.append(located(ref.location, f"unknown parent {str(ref)!r}{hint}"))
        return []
    candidates = done.get(ref.image, [])  # empty when the parent is in a cycle
    if ref.tag is None:
        return candidates
    matches = [v for v in candidates if ref.tag in v.tags]
    if candidates and not matches:
        known = sorted({t for v in candidates for t in v.tags})
        problems.append(
            located(
                ref.location,
                f"unknown parent tag {str(ref)!r}: {ref.image} has {', '.join(known[:12])}"
                + (", ..." if len(known) > 12 else ""),
            )
        )
    return matches


def located(loc: Location, message: str) -> Problem:
    return Problem(loc.file, loc.line, loc.column, message)


def claims_of(index: int, draft: Draft, default: Variant | None) -> Iterable[tuple[str, Claim]]:
    version = draft.version
    spelled = [(p, p == version.name) for p in versions.prefixes(version.name)]
    spelled += [(alias, True) for alias in version.aliases]
    parent = draft.parent
    if parent is None:
        for tag, names_version in spelled:
            yield tag, Claim(names_version, True, draft.order, index)
        return
    for tag, names_version in spelled:
        for suffix in parent.suffixes:
            claim = Claim(names_version, suffix == parent.exact_tag, draft.order, index)
            yield f"{tag}-{parent.image.tag_name}{suffix}", claim
        if parent is default:
            yield tag, Claim(names_version, True, draft.order, index)


def resolve(
    image: Image,
    drafts: list[Draft],
    claimed: Holders,
    problems: list[Problem],
) -> list[Variant]:
    """Settle every tag of `image` and return its variants with their final tags."""
    default = default_variant(image, drafts, problems)
    local: dict[str, list[Claim]] = defaultdict(list)
    for index, draft in enumerate(drafts):
        for tag, claim in claims_of(index, draft, default):
            local[tag].append(claim)
    alias_holder = image_alias_holder(drafts, default)
    if alias_holder is not None:
        for alias in image.aliases:
            local[alias].append(Claim(True, True, drafts[alias_holder].order, alias_holder))
    won: dict[int, list[str]] = defaultdict(list)
    held = claimed.setdefault(image.repository, {})
    for tag, claims in local.items():
        winner = settle(image, tag, claims, drafts, held, problems)
        if winner is not None:
            won[winner].append(tag)
    variants = []
    for index, draft in enumerate(drafts):
        tags = sorted(won[index])
        if draft.exact_tag not in tags:
            continue  # lost its exact tag in a collision, already reported
        tags.remove(draft.exact_tag)
        tags.insert(0, draft.exact_tag)
        variants.append(
            Variant(image, draft.version, draft.parent, draft.exact_tag, tuple(tags), draft.order)
        )
    return variants


def default_variant(image: Image, drafts: list[Draft], problems: list[Problem]) -> Variant | None:
    """The parent variant whose children get the bare version tags (`java:8`)."""
    ref = image.default_parent
    if ref is None:
        return None
    matches = {
        p.key: p
        for d in drafts
        if (p := d.parent) is not None
        and p.image.name == ref.image
        and (ref.tag is None or ref.tag in p.tags)
    }
    if matches:
        return max(matches.values(), key=lambda p: p.order)
    problems.append(
        located(
            ref.location, f"default_parent {str(ref)!r} of {image.name!r} is not one of its parents"
        )
    )
    return None


def image_alias_holder(drafts: list[Draft], default: Variant | None) -> int | None:
    """Index of the draft that gets image-wide aliases such as `latest`."""
    eligible = [i for i, d in enumerate(drafts) if d.parent is None or d.parent is default]
    if not eligible:
        return None
    return max(eligible, key=lambda i: drafts[i].order)


def settle(
    image: Image,
    tag: str,
    claims: list[Claim],
    drafts: list[Draft],
    held: dict[str, tuple[Claim, Draft]],
    problems: list[Problem],
) -> int | None:
    """Pick the claim that holds `tag`; report two exact claims as a collision.

    `held` holds the tags already settled in this repository by earlier images
    (several catalog entries may publish to one repository).
    """
    if len(claims) == 1:
        best = claims[0]
        rivals = [(best, drafts[best.draft])] if best.exact else []
    else:
        best = max(claims)
        rivals = [(c, drafts[c.draft]) for c in claims if c.exact]
    earlier = held.get(tag)
    if earlier is not None and earlier[0].exact:
        rivals.insert(0, earlier)
    if len(rivals) > 1:
        first, second = rivals[0][1], rivals[1][1]
        problems.append(
            located(
                second.version.location,
                f"tag {image.repository}:{tag} is claimed by both {describe(first)} "
                f"({first.version.location}) and {describe(second)}",
            )
        )
        return None
    if earlier is not None:
        return None  # an earlier entry of this repository holds it
    held[tag] = (best, drafts[best.draft])
    return best.draft


def describe(draft: Draft) -> str:
    where = f" on {draft.parent.key}" if draft.parent else ""
    return f"{draft.image.name}:{draft.version.name}{where}"
