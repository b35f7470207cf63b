"""Retention: which superseded generations of each variant may go, and deleting them safely.

A variant's exact tag (`my/java:17-debian12`) moves to every rebuild, so the
generation it left is a manifest no tag names any more, kept alive by its
signature and attestation tags (`sha256-<hex>.sig`, `.att`) and the referrers
tag schema's index (`sha256-<hex>`, listing the cosign 3 bundle referrers).
Those tags are how an old generation is found again; its manifest's
annotations (`org.opencontainers.image.ref.name` = the exact tag, `.created`)
say whose generation it is and when it was made.

Three steps, so the rules can be tested without a registry:

- :func:`collect` reads the facts: every repository's tags, the digests they
  name, each candidate's annotations and attachments, the digests rendered
  deployments pin and the journal's pending moves;
- :func:`decide` (pure) keeps a generation while any tag, deployment, pending
  move or kept child names it, while it is among the last `keep` of its variant,
  or while it is younger than `older_than`; everything else is deleted;
- :func:`apply_prune` deletes, in an order that any interruption leaves
  findable, so running prune again finishes the job (see :func:`deletion_order`).

:func:`find_prunable` is `collect` then `decide`, the API the CLI and the
console share.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from socle.core.catalog import Catalog, Duration
from socle.core.graph import Graph
from socle.core.loader import DURATION_RE, UNIT_SECONDS
from socle.errors import InputError
from socle.journal import JOURNAL, Journal
from socle.oci.content import Descriptor
from socle.oci.media import BASE_DIGEST, CREATED, INDEX_TYPES, REF_NAME
from socle.oci.reference import Reference
from socle.registry.errors import ManifestNotFound
from socle.registry.interface import Artifacts, Tags

# `sha256-<hex>` (referrers index), `sha256-<hex>.sig`, `sha256-<hex>.att`
ATTACHMENT_TAG = re.compile(r"^sha256-([0-9a-f]{64})(\.sig|\.att)?$")
PINNED_DIGEST = re.compile(r"@(sha256:[0-9a-f]{64})")
KINDS = {".sig": "signature", ".att": "attestation", "": "referrers index"}
MAX_SCANNED_FILE = 16 << 20  # a rendered manifest is small; skip big binaries


class Client(Artifacts, Tags, Protocol):
    """What retention needs of a registry (socle's RegistryClient has all of it)."""

    def delete_manifest(self, ref: Reference) -> None:
        """Delete the manifest `ref` names (and with it, in distribution, its tags)."""
        ...


@dataclass(frozen=True)
class RetentionPolicy:
    """Keep the last `keep` generations of each variant (the current one counts), and
    with `older_than` also every generation younger than that; `now` is for tests."""

    keep: int = 3
    older_than: Duration | None = None
    now: datetime | None = None

    def __post_init__(self) -> None:
        if self.keep < 1:
            raise InputError(
                f"--keep {self.keep}: at least the current generation is kept", hint="--keep 1"
            )


def parse_duration(text: str) -> Duration:
    """`30d`, `12h`, `2w` (s, m, h, d, w); anything else is one clear error."""
    match = DURATION_RE.match(text.strip())
    if match is None:
        raise InputError(
            f"invalid duration {text!r}", hint="use a number and s, m, h, d or w, e.g. 30d or 12h"
        )
    return Duration(int(match[1]) * UNIT_SECONDS[match[2]], text.strip())


# -- the facts ---------------------------------------------------------------------


@dataclass(frozen=True)
class Attachment:
    """A manifest that exists for an image: its signature, attestation, referrers index, or a
    bundle referrer listed in that index (`tag` None: the referrer is found only through it)."""

    kind: str
    digest: str
    tag: str | None = None
    of: str | None = None  # the platform manifest it is attached to, for an index's platforms
    created: datetime | None = None  # when it was attached (a bundle referrer says)


@dataclass(frozen=True)
class Generation:
    """One image manifest of a repository, found through a tag or its attachments' tags."""

    repository: str
    digest: str
    ref_name: str | None  # the exact tag it was built for (annotation), if socle built it
    created: datetime | None
    tags: tuple[str, ...] = ()  # the image tags that name it now
    attachments: tuple[Attachment, ...] = ()
    base: str | None = None  # its parent's digest (annotation)
    platforms: tuple[str, ...] = ()  # an index's manifests

    @property
    def signed(self) -> datetime | None:
        """When it was last signed or attested, as its bundle referrers say."""
        return max((a.created for a in self.attachments if a.created), default=None)


@dataclass(frozen=True)
class Leftover:
    """Attachments whose image is already gone (an interrupted prune, or a manual delete)."""

    repository: str
    digest: str
    attachments: tuple[Attachment, ...]


@dataclass(frozen=True)
class VariantTags:
    """A catalog variant as retention sees it: its repository, exact tag and every tag."""

    key: str
    repository: str
    exact_tag: str
    tags: tuple[str, ...]


@dataclass(frozen=True)
class Facts:
    """Everything :func:`decide` needs, read by :func:`collect`."""

    registry: str
    variants: tuple[VariantTags, ...]  # parents before children
    generations: tuple[Generation, ...]
    leftovers: tuple[Leftover, ...] = ()
    deployments: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # digest -> files
    pending: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # digest -> tags


# -- the plan ------------------------------------------------------------------------


@dataclass(frozen=True)
class Kept:
    """A generation that stays, and every reason it stays."""

    digest: str
    created: datetime | None
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Doomed:
    """A generation to delete, with its attachments."""

    repository: str
    digest: str
    created: datetime | None
    attachments: tuple[Attachment, ...]
    platforms: tuple[str, ...] = ()
    why: str = ""
    present: bool = True  # False: the image is gone already, only attachments are left


@dataclass(frozen=True)
class VariantPlan:
    """One variant's generations, newest first: what is kept and what is deleted."""

    key: str
    repository: str
    kept: tuple[Kept, ...]
    deleted: tuple[Doomed, ...]


@dataclass(frozen=True)
class PrunePlan:
    """What a prune keeps and deletes; `unattributed` generations are kept, unclaimed."""

    registry: str
    variants: tuple[VariantPlan, ...]
    leftovers: tuple[Doomed, ...] = ()
    unattributed: tuple[Generation, ...] = ()

    @property
    def doomed(self) -> tuple[Doomed, ...]:
        return tuple(d for v in self.variants for d in v.deleted) + self.leftovers

    @property
    def manifests(self) -> int:
        """How many manifests applying the plan deletes (images, platforms, attachments)."""
        return sum(len(deletion_order(d)) for d in self.doomed)


def decide(facts: Facts, policy: RetentionPolicy) -> PrunePlan:
    """The pure decision: per variant, keep what anything still names, the last
    `policy.keep` generations and (with `older_than`) the young ones; delete the rest.

    A generation without a creation time, or whose exact tag no variant of the
    catalog holds, is never deleted. Children are decided first, so a kept
    generation's base (the parent generation it was built on) is kept too.
    """
    now = policy.now or datetime.now(UTC)
    by_owner: dict[tuple[str, str], list[Generation]] = defaultdict(list)
    tagged: dict[tuple[str, str], Generation] = {}
    for gen in facts.generations:
        for tag in gen.tags:
            tagged[(gen.repository, tag)] = gen
    owners = {(v.repository, v.exact_tag): v for v in facts.variants}
    unattributed = []
    for gen in facts.generations:
        owner = _owner(gen, owners)
        if owner is None:
            unattributed.append(gen)
        else:
            by_owner[(owner.repository, owner.exact_tag)].append(gen)
    bases: dict[str, list[str]] = defaultdict(list)  # digest -> the kept children built on it
    plans = []
    for variant in reversed(facts.variants):
        current = tagged.get((variant.repository, variant.exact_tag))
        generations = _newest_first(by_owner[(variant.repository, variant.exact_tag)], current)
        kept: list[Kept] = []
        deleted: list[Doomed] = []
        for number, gen in enumerate(generations, start=1):
            reasons = _reasons(gen, number, variant, facts, policy, now, bases)
            if reasons:
                kept.append(Kept(gen.digest, gen.created, tuple(reasons)))
                if gen.base:
                    bases[gen.base].append(variant.key)
            else:
                why = f"generation {number} of {variant.key}, superseded"
                deleted.append(
                    Doomed(
                        gen.repository,
                        gen.digest,
                        gen.created,
                        gen.attachments,
                        gen.platforms,
                        why,
                    )
                )
        plans.append(VariantPlan(variant.key, variant.repository, tuple(kept), tuple(deleted)))
    plans.reverse()
    kept_platforms = {
        p for gen in facts.generations if gen.digest not in _doomed(plans) for p in gen.platforms
    }
    plans = [_without_shared_platforms(p, kept_platforms) for p in plans]
    leftovers = tuple(
        Doomed(
            lo.repository,
            lo.digest,
            None,
            lo.attachments,
            why="image already deleted",
            present=False,
        )
        for lo in facts.leftovers
        if lo.digest not in facts.deployments
    )
    return PrunePlan(facts.registry, tuple(plans), leftovers, tuple(unattributed))


def _owner(gen: Generation, owners: Mapping[tuple[str, str], VariantTags]) -> VariantTags | None:
    if gen.ref_name is not None and (gen.repository, gen.ref_name) in owners:
        return owners[(gen.repository, gen.ref_name)]
    for tag in gen.tags:  # an image published before socle wrote ref.name, still tagged
        if (gen.repository, tag) in owners:
            return owners[(gen.repository, tag)]
    return None


def _newest_first(
    generations: Iterable[Generation], current: Generation | None
) -> list[Generation]:
    """The current generation (the exact tag's) first, then by creation time, newest first.

    Images are stamped with their run's day (reproducible builds), so a day's
    generations tie on their creation time: the time they were signed orders them.
    """
    epoch = datetime.min.replace(tzinfo=UTC)
    ordered = sorted(
        generations,
        key=lambda g: (
            g is not current,
            -(g.created or epoch).timestamp(),
            -(g.signed or epoch).timestamp(),
            g.digest,
        ),
    )
    return ordered


def _reasons(
    gen: Generation,
    number: int,
    variant: VariantTags,
    facts: Facts,
    policy: RetentionPolicy,
    now: datetime,
    bases: Mapping[str, list[str]],
) -> list[str]:
    exact_first = sorted(gen.tags, key=lambda tag: (tag != variant.exact_tag, tag))
    reasons = [_tag_reason(tag, variant) for tag in exact_first]
    reasons += [f"deployment {path}" for path in facts.deployments.get(gen.digest, ())]
    reasons += [
        f"pending move of tag {tag} ({JOURNAL})" for tag in facts.pending.get(gen.digest, ())
    ]
    for child, count in sorted(Counter(bases.get(gen.digest, ())).items()):
        reasons.append(f"base of {count} kept generation{'s' * (count > 1)} of {child}")
    if number <= policy.keep:
        reasons.append(f"generation {number} of {policy.keep}")
    if gen.created is None:
        reasons.append("no creation time")
    elif policy.older_than is not None:
        age = now - gen.created
        if age < timedelta(seconds=policy.older_than.seconds):
            reasons.append(f"younger than {policy.older_than.text}")
    return reasons


def _tag_reason(tag: str, variant: VariantTags) -> str:
    if tag == variant.exact_tag:
        return f"exact tag {tag}"
    return f"floating tag {tag}" if tag in variant.tags else f"tag {tag}"


def _doomed(plans: Iterable[VariantPlan]) -> set[str]:
    return {d.digest for p in plans for d in p.deleted}


def _without_shared_platforms(plan: VariantPlan, kept: set[str]) -> VariantPlan:
    deleted = tuple(
        Doomed(
            d.repository,
            d.digest,
            d.created,
            tuple(a for a in d.attachments if a.of is None or a.of not in kept),
            tuple(p for p in d.platforms if p not in kept),
            d.why,
        )
        for d in plan.deleted
    )
    return VariantPlan(plan.key, plan.repository, plan.kept, deleted)


# -- collecting the facts --------------------------------------------------------------


def find_prunable(
    catalog: Catalog,
    graph: Graph,
    client: Client,
    policy: RetentionPolicy,
    deployments: Sequence[Path] = (),
) -> PrunePlan:
    """Read the registry and the rendered deployments, then decide (see :func:`decide`)."""
    return decide(collect(catalog, graph, client, deployments), policy)


def collect(
    catalog: Catalog, graph: Graph, client: Client, deployments: Sequence[Path] = ()
) -> Facts:
    """The facts of every repository of the catalog (the journal's repository is left alone)."""
    variants = tuple(
        VariantTags(v.key, v.image.repository, v.exact_tag, v.tags) for v in graph.variants
    )
    repositories = sorted({v.repository for v in variants})
    pinned = scan_deployments(deployments)
    generations: list[Generation] = []
    leftovers: list[Leftover] = []
    for repository in repositories:
        found, gone = _collect_repository(client, catalog.registry, repository)
        generations += found
        leftovers += gone
    pending: dict[str, list[str]] = defaultdict(list)
    journal = Journal(client, catalog.registry, catalog.namespace)
    for record in journal.pending(repositories):
        for move in record.moves:
            pending[move.digest].append(move.tag)
    return Facts(
        catalog.registry,
        variants,
        tuple(generations),
        tuple(leftovers),
        pinned,
        {d: tuple(tags) for d, tags in pending.items()},
    )


def scan_deployments(folders: Sequence[Path]) -> dict[str, tuple[str, ...]]:
    """Every `@sha256:<hex>` in the files under `folders`: digest -> the files naming it."""
    found: dict[str, set[str]] = defaultdict(set)
    for folder in folders:
        if not folder.exists():
            raise InputError(
                f"--deployments {folder}: no such folder",
                hint="give the folder `socle deploy render -o DIR` wrote",
            )
        files = (
            [folder] if folder.is_file() else sorted(p for p in folder.rglob("*") if p.is_file())
        )
        for path in files:
            try:
                if path.stat().st_size > MAX_SCANNED_FILE:
                    continue
                text = path.read_text(errors="replace")
            except OSError as exc:
                raise InputError(f"cannot read {path}: {exc.strerror}") from None
            for digest in PINNED_DIGEST.findall(text):
                found[digest].add(str(path))
    return {digest: tuple(sorted(paths)) for digest, paths in found.items()}


def _collect_repository(
    client: Client, registry: str, repository: str
) -> tuple[list[Generation], list[Leftover]]:
    repo = Reference(registry, repository, tag="latest")
    tags = client.list_tags(repo)
    attachment_tags: dict[str, dict[str, str]] = defaultdict(dict)  # digest -> suffix -> tag
    image_tags = []
    for tag in tags:
        match = ATTACHMENT_TAG.match(tag)
        if match:
            attachment_tags[f"sha256:{match[1]}"][match[2] or ""] = tag
        else:
            image_tags.append(tag)
    heads = client.head_manifests([repo.with_tag(t) for t in image_tags + _flat(attachment_tags)])
    resolved = dict(zip(image_tags + _flat(attachment_tags), heads, strict=True))
    named: dict[str, list[str]] = defaultdict(list)
    for tag in image_tags:
        if (head := resolved[tag]) is not None:
            named[head.digest].append(tag)
    attachment_digests = {h.digest for t, h in resolved.items() if h and t not in image_tags}
    candidates = sorted((set(named) | set(attachment_tags)) - attachment_digests)
    generations, leftovers = [], []
    for digest in candidates:
        attachments = _attachments(client, repo, digest, attachment_tags.get(digest, {}), resolved)
        try:
            manifest = client.get_manifest(repo.with_digest(digest))
        except ManifestNotFound:
            if attachments:
                leftovers.append(Leftover(repository, digest, attachments))
            continue
        document = json.loads(manifest.data)
        annotations = document.get("annotations") or {}
        platforms = (
            tuple(str(m["digest"]) for m in document.get("manifests", []))
            if manifest.media_type in INDEX_TYPES
            else ()
        )
        generations.append(
            Generation(
                repository,
                digest,
                annotations.get(REF_NAME),
                _timestamp(annotations.get(CREATED)),
                tuple(sorted(named.get(digest, ()))),
                attachments,
                annotations.get(BASE_DIGEST),
                platforms,
            )
        )
    return _fold_platforms(generations), leftovers


def _fold_platforms(generations: list[Generation]) -> list[Generation]:
    """An index's platform manifests belong to its generation, not to generations of their own.

    socle signs each platform of an index, so their signatures' tags find them
    beside the index; counted apart, they would be superseded generations of the
    variant and a platform of the current index could be deleted. Unless a tag
    names it, a platform goes with its index, its attachments deleted first.
    """
    by_digest = {g.digest: g for g in generations}
    platform = {p for g in generations for p in g.platforms if p in by_digest}
    platform -= {p for p in platform if by_digest[p].tags}
    folded = []
    for gen in generations:
        if gen.digest in platform:
            continue
        own = tuple(
            replace(a, kind=f"platform {a.kind}", of=p)
            for p in gen.platforms
            if p in platform
            for a in by_digest[p].attachments
        )
        folded.append(replace(gen, attachments=own + gen.attachments) if own else gen)
    return folded


def _flat(attachment_tags: Mapping[str, Mapping[str, str]]) -> list[str]:
    return [tag for by_suffix in attachment_tags.values() for tag in by_suffix.values()]


def _attachments(
    client: Client,
    repo: Reference,
    digest: str,
    by_suffix: Mapping[str, str],
    resolved: Mapping[str, Descriptor | None],
) -> tuple[Attachment, ...]:
    found = []
    for suffix, tag in sorted(by_suffix.items()):
        head = resolved.get(tag)
        if head is None:
            continue
        at = head.digest
        if suffix == "":
            found += _referrers(client, repo, digest, at)
        found.append(Attachment(KINDS[suffix], at, tag))
    return tuple(found)


def _referrers(client: Client, repo: Reference, subject: str, index: str) -> list[Attachment]:
    """The bundle referrers the fallback index lists whose subject really is `subject`."""
    try:
        listed = json.loads(client.get_manifest(repo.with_digest(index)).data)
    except ManifestNotFound:
        return []
    found = []
    for entry in listed.get("manifests", []):
        digest = entry.get("digest") if isinstance(entry, dict) else None
        if not isinstance(digest, str):
            continue
        try:
            referrer = json.loads(client.get_manifest(repo.with_digest(digest)).data)
        except ManifestNotFound:
            continue  # deleted by an interrupted prune: nothing left to do for it
        if (referrer.get("subject") or {}).get("digest") == subject:
            created = _timestamp(str((referrer.get("annotations") or {}).get(CREATED) or ""))
            found.append(Attachment("referrer", digest, created=created))
    return found


def _timestamp(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


# -- deleting ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Deletion:
    """One manifest prune deleted (or found already gone), for observers."""

    repository: str
    digest: str
    kind: str  # "image", "platform", or an attachment kind
    gone_already: bool = False


@dataclass(frozen=True)
class PruneResult:
    """What applying a plan did."""

    deleted: tuple[Deletion, ...]

    @property
    def manifests(self) -> int:
        return sum(1 for d in self.deleted if not d.gone_already)


def deletion_order(doomed: Doomed) -> list[tuple[str, str]]:
    """(kind, digest) in the order they are deleted, so any interruption is recoverable.

    Deleting a manifest in distribution also drops the tags that name it, and an
    old generation is found only through its attachments' tags. So:

    1. the bundle referrers first: untagged, only the referrers index lists them;
    2. the attachments, keeping one tag for last (the referrers index if there is
       one, else `.sig`, else `.att`): the image is then unsigned, but it is
       already named by nothing (tags and deployments were checked), and the
       remaining tag still finds it;
    3. the image, then an index's platform manifests;
    4. the last tag: from here on nothing of the generation is left.

    Interrupted anywhere, the next prune finds the generation (or, after step 3,
    its leftover attachment) through the tag still there and finishes.
    """
    referrers = [("referrer", a.digest) for a in doomed.attachments if a.tag is None]
    rank = {"attestation": 0, "signature": 1, "referrers index": 2}
    tagged = sorted((a for a in doomed.attachments if a.tag), key=lambda a: rank.get(a.kind, -1))
    order = referrers + [(a.kind, a.digest) for a in tagged[:-1]]
    if doomed.present:
        order.append(("image", doomed.digest))
        order += [("platform", p) for p in doomed.platforms]
    order += [(a.kind, a.digest) for a in tagged[-1:]]
    return order


def apply_prune(
    plan: PrunePlan, client: Client, observer: Callable[[Deletion], None] | None = None
) -> PruneResult:
    """Delete what `plan` dooms, each generation in :func:`deletion_order`.

    Before a generation goes, its image tags are checked again: a tag that came
    to name it since the plan was made keeps it (nothing is deleted for it).
    A manifest already gone counts as done, so a second run finishes a first.
    """
    done: list[Deletion] = []
    named: dict[str, set[str]] = {}
    for doomed in plan.doomed:
        repo = Reference(plan.registry, doomed.repository, digest=doomed.digest)
        if doomed.repository not in named:
            named[doomed.repository] = _named_now(client, repo)
        if doomed.present and doomed.digest in named[doomed.repository]:
            continue
        for kind, digest in deletion_order(doomed):
            try:
                client.delete_manifest(repo.with_digest(digest))
                deletion = Deletion(doomed.repository, digest, kind)
            except ManifestNotFound:
                deletion = Deletion(doomed.repository, digest, kind, gone_already=True)
            done.append(deletion)
            if observer is not None:
                observer(deletion)
    return PruneResult(tuple(done))


def _named_now(client: Client, repo: Reference) -> set[str]:
    """The digests the repository's image tags name right now."""
    image_tags = [t for t in client.list_tags(repo) if not ATTACHMENT_TAG.match(t)]
    heads = client.head_manifests([repo.with_tag(t) for t in image_tags])
    return {h.digest for h in heads if h is not None}
