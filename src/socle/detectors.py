"""Reasons to rebuild that only the published images can tell: pending security updates.

For each bootstrapped OS image in a plan that is otherwise current, socle
fetches the published image, runs apt's simulation in it against the catalog's
mirror (or the host's sources), and turns pending security updates into a
rebuild reason. The planner stays pure: these reasons are passed to it.
"""

from __future__ import annotations

from collections.abc import Iterable

from socle.builders.interface import Builder
from socle.core.catalog import Catalog, Kind
from socle.core.convention import Variant
from socle.core.plan import Plan, Reason
from socle.localimage import local_copy
from socle.oci.reference import Reference
from socle.registry.interface import ImageSource
from socle.updates import PendingUpdate, pending_security_updates, security_sources

SHOWN = 5


def security_reasons(
    catalog: Catalog,
    plan: Plan,
    source: ImageSource,
    builder: Builder,
    variants: Iterable[Variant] | None = None,
) -> dict[str, list[Reason]]:
    """`N pending security updates: ...` for every published bootstrapped image that has some.

    `variants` limits the check (default: every bootstrapped variant of the plan).
    """
    wanted = {v.key for v in variants} if variants is not None else None
    found: dict[str, list[Reason]] = {}
    for step in plan.steps:
        variant = step.variant
        if variant.image.kind is not Kind.BOOTSTRAP or step.published is None:
            continue
        if wanted is not None and variant.key not in wanted:
            continue
        ref = Reference(catalog.registry, variant.image.repository, digest=step.published.digest)
        updates = check_image(source, ref, variant, builder)
        if updates:
            found[variant.key] = [Reason("security-updates", describe(updates))]
    return found


def check_image(
    source: ImageSource, ref: Reference, variant: Variant, builder: Builder
) -> list[PendingUpdate]:
    """Pending security updates of the published image `ref` (a throw-away local copy)."""
    spec = variant.version.bootstrap
    assert spec is not None
    name = f"socle-check/{variant.image.name}:{variant.exact_tag}"
    with local_copy(source, builder, ref, name):
        sources = security_sources(spec.suite, mirror=spec.mirror, components=spec.components)
        return pending_security_updates(builder, name, sources=sources)


def describe(updates: list[PendingUpdate]) -> str:
    listed = ", ".join(f"{u.package} {u.installed} -> {u.candidate}" for u in updates[:SHOWN])
    more = f" and {len(updates) - SHOWN} more" if len(updates) > SHOWN else ""
    count = len(updates)
    return f"{count} pending security update{'s' if count != 1 else ''}: {listed}{more}"
