"""The plan: for every variant, build or skip, and why — a pure function.

A variant's fingerprint is the SHA-256 of its own input digests (Dockerfile,
context, build args, bootstrap parameters or upstream pin) and its parent's
fingerprint, so it is known before anything is built. The parent's *digest* is
checked separately: the child records the digest it was built on
(`org.opencontainers.image.base.digest`), and a parent republished under a new
digest makes the child stale even when no input changed.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from socle.canonical import canonical_json, sha256_digest
from socle.core.convention import Variant
from socle.core.graph import Graph
from socle.core.state import Published

# Named digests of a variant\'s own inputs (Dockerfile, context, args, bootstrap, pin).
Components = tuple[tuple[str, str], ...]

COMPONENT_TEXT = {
    "dockerfile": "Dockerfile changed",
    "context": "build context changed",
    "args": "build args changed",
    "bootstrap": "bootstrap parameters changed (suite, packages, mirror...)",
    "architectures": "architectures changed",
}


class Action(Enum):
    BUILD = "build"
    SKIP = "skip"


@dataclass(frozen=True)
class Reason:
    """Why a variant is rebuilt: a stable code for machines, a sentence for people."""

    code: str
    text: str


@dataclass(frozen=True)
class Step:
    """The decision for one variant."""

    variant: Variant
    refs: tuple[str, ...]
    fingerprint: str
    inputs: Components
    action: Action
    reasons: tuple[Reason, ...]
    published: Published | None

    @property
    def level(self) -> int:
        """The variant's depth in the graph: 0 for a root; a level builds in parallel."""
        depth, parent = 0, self.variant.parent
        while parent is not None:
            depth, parent = depth + 1, parent.parent
        return depth

    def as_json(self) -> dict[str, object]:
        parent = self.variant.parent
        return {
            "key": self.variant.key,
            "name": self.variant.image.name,
            "version": self.variant.version.name,
            "variant": self.variant.exact_tag,
            "parent": parent.key if parent else None,
            "parents": [parent.key] if parent else [],
            "level": self.level,
            "refs": list(self.refs),
            "architectures": list(self.variant.architectures),
            "index": self.variant.multi_platform,  # published as an OCI image index
            "fingerprint": self.fingerprint,
            "action": self.action.value,
            "reasons": [r.text for r in self.reasons],
            "published_digest": self.published.digest if self.published else None,
            "gates": dict(self.published.gates) if self.published else {},
        }


@dataclass(frozen=True)
class Plan:
    """Every variant's step, in build order (parents first)."""

    registry: str
    steps: tuple[Step, ...]

    def builds(self) -> list[Step]:
        return [s for s in self.steps if s.action is Action.BUILD]

    def to_json(self) -> str:
        return json.dumps({"images": [s.as_json() for s in self.steps]}, indent=2)


def fingerprint(inputs: Components, parent_fingerprint: str | None) -> str:
    """The fingerprint of a variant from its own inputs and its parent's fingerprint."""
    return sha256_digest(canonical_json({"inputs": dict(inputs), "parent": parent_fingerprint}))


def make_plan(
    graph: Graph,
    registry: str,
    inputs: Mapping[str, Components],
    published: Mapping[str, Published | None],
    *,
    now: datetime | None = None,
    extra: Mapping[str, Sequence[Reason]] | None = None,
    selected: Collection[str] | None = None,
) -> Plan:
    """Decide build or skip for every variant of `graph`.

    `inputs` maps variant keys to their input digests; `published` maps each
    variant's exact reference to what the registry holds there (or None).
    `now` enables the max_age rule; `extra` adds reasons found by detectors
    outside the planner (pending security updates), by variant key.
    `selected` is the variant keys this run may build (None: all). A parent
    outside it is not rebuilt by the run, so its children are judged against
    the parent as published, not against the rebuild it would need.
    """
    steps: dict[str, Step] = {}
    for variant in graph.variants:
        parent = steps[variant.parent.key] if variant.parent else None
        own = inputs[variant.key]
        current = published.get(variant.ref(registry))
        rebuilt = parent is not None and parent.action is Action.BUILD
        if rebuilt and selected is not None and parent is not None:
            rebuilt = parent.variant.key in selected
        reasons = tuple(reasons_for(variant, own, parent, current, parent_rebuilt=rebuilt))
        reasons += age_reasons(variant, current, now) + tuple((extra or {}).get(variant.key, ()))
        steps[variant.key] = Step(
            variant=variant,
            refs=variant.refs(registry),
            fingerprint=fingerprint(own, parent.fingerprint if parent else None),
            inputs=own,
            action=Action.BUILD if reasons else Action.SKIP,
            reasons=reasons,
            published=current,
        )
    return Plan(registry, tuple(steps.values()))


def reasons_for(
    variant: Variant,
    own: Components,
    parent: Step | None,
    current: Published | None,
    *,
    parent_rebuilt: bool | None = None,
) -> list[Reason]:
    """Why `variant` needs a build; `parent_rebuilt` defaults to the parent's action."""
    if current is None:
        return [Reason("new", "never published")]
    upstream = variant.version.upstream
    if upstream is not None:
        # Re-published byte for byte: the digest itself is the record.
        if upstream.digest is None:
            return [Reason("unpinned", f"upstream {upstream} is not pinned to a digest")]
        if current.digest != upstream.digest:
            moved = f"upstream {upstream} moved from {short(current.digest)} to {short(upstream.digest)}"
            return [Reason("upstream", moved)]
        return []
    if current.fingerprint is None:
        return [Reason("foreign", "the published image carries no socle fingerprint")]
    found = input_changes(dict(own), dict(current.inputs))
    if parent is not None:
        if parent_rebuilt is None:
            parent_rebuilt = parent.action is Action.BUILD
        found.extend(parent_changes(parent, current, rebuilt=parent_rebuilt))
    if not found and current.fingerprint != fingerprint(
        own, parent.fingerprint if parent else None
    ):
        found.append(Reason("fingerprint", "input fingerprint changed"))
    return found


def input_changes(own: dict[str, str], recorded: dict[str, str]) -> list[Reason]:
    found = []
    for name in sorted(own.keys() | recorded.keys()):
        before, after = recorded.get(name), own.get(name)
        if before == after:
            continue
        found.append(Reason(name, COMPONENT_TEXT.get(name, f"{name} changed")))
    return found


def parent_changes(parent: Step, current: Published, *, rebuilt: bool) -> list[Reason]:
    name = parent.variant.key
    if rebuilt:
        return [Reason("parent-rebuilt", f"parent {name} is rebuilt")]
    if parent.published is None:  # outside the run and never published: refused before building
        return [Reason("parent-missing", f"parent {name} is not published")]
    if current.base_digest != parent.published.digest:
        return [
            Reason(
                "parent-moved",
                f"parent {name} moved from {short(current.base_digest)} to {short(parent.published.digest)}",
            )
        ]
    return []


def age_reasons(
    variant: Variant, current: Published | None, now: datetime | None
) -> tuple[Reason, ...]:
    """`published 9 days ago, older than max_age 7d` when the image's max_age is exceeded."""
    limit = variant.image.max_age
    if limit is None or now is None or current is None or not current.created:
        return ()
    try:
        created = datetime.fromisoformat(current.created.replace("Z", "+00:00"))
    except ValueError:
        return ()
    age = now - created
    if age.total_seconds() <= limit.seconds:
        return ()
    return (
        Reason("max-age", f"published {describe_age(age)} ago, older than max_age {limit.text}"),
    )


def describe_age(age: timedelta) -> str:
    if age.days >= 2:
        return f"{age.days} days"
    hours = int(age.total_seconds() // 3600)
    return f"{hours} hours" if hours >= 2 else f"{int(age.total_seconds() // 60)} minutes"


def short(digest: str | None) -> str:
    """`sha256:0123456789ab..` — enough to tell digests apart in a sentence."""
    if digest is None:
        return "nothing"
    algo, _, hexa = digest.partition(":")
    return f"{algo}:{hexa[:12]}.." if hexa else digest
