"""`socle prune`: list, and with --yes delete, superseded generations beyond the retention policy."""

from __future__ import annotations

import shlex
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import click

from socle.commands.options import catalog_options, deployments_option, open_catalog

if TYPE_CHECKING:
    from datetime import datetime

    from socle.core.catalog import Duration
    from socle.registry.client import RegistryClient
    from socle.retention import Doomed, PrunePlan


def open_client() -> RegistryClient:
    """The registry client the command uses (tests may replace it)."""
    from socle.registry.client import RegistryClient

    return RegistryClient.from_config()


def _duration(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Duration | None:
    if value is None:
        return None
    from socle.errors import SocleError
    from socle.retention import parse_duration

    try:
        return parse_duration(value)
    except SocleError as exc:
        raise click.BadParameter(f"{exc.message} (use a number and s, m, h, d or w: 30d)") from exc


@click.command("prune")
@catalog_options
@click.option(
    "--keep",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Generations kept per variant, the current one included.",
)
@click.option(
    "--older-than",
    metavar="DURATION",
    callback=_duration,
    help="Delete only generations older than this too (30d, 12h, 2w).",
)
@deployments_option
@click.option("--yes", is_flag=True, help="Delete; without it prune only lists (a dry run).")
def prune_cmd(
    catalog_path: Path,
    registry: str | None,
    keep: int,
    older_than: Duration | None,
    deployments: tuple[Path, ...],
    yes: bool,
) -> None:
    """List superseded generations (and their signatures) beyond the policy; --yes deletes them.

    Never deleted: a digest any tag names, one a rendered deployment pins, one a
    pending tag move names, the base of a kept generation, and the last KEEP
    generations of each variant.
    """
    from socle.retention import RetentionPolicy, apply_prune, find_prunable

    catalog, graph = open_catalog(catalog_path, registry)
    policy = RetentionPolicy(keep=keep, older_than=older_than)
    with open_client() as client:
        plan = find_prunable(catalog, graph, client, policy, deployments)
        _show(plan)
        doomed = plan.doomed
        if not doomed:
            click.echo("nothing to prune")
            return
        generations = sum(1 for d in doomed if d.present)
        if not yes:
            click.echo(
                f"{generations} generations to delete ({plan.manifests} manifests); "
                "dry run, nothing deleted"
            )
            again = _again(catalog_path, keep, older_than, deployments)
            click.echo(f"to delete them: {again}")
            return
        result = apply_prune(plan, client)
    gone = sum(1 for d in result.deleted if d.gone_already)
    click.echo(
        f"deleted {result.manifests} manifests ({generations} generations)"
        + (f"; {gone} were already gone" if gone else "")
    )
    click.echo(_gc_hint(catalog.registry))


def _again(
    catalog_path: Path, keep: int, older_than: Duration | None, deployments: tuple[Path, ...]
) -> str:
    """The command line that applies this dry run."""
    words = ["socle", "prune", "-c", str(catalog_path)]
    if keep != 3:
        words += ["--keep", str(keep)]
    if older_than is not None:
        words += ["--older-than", older_than.text]
    for folder in deployments:
        words += ["--deployments", str(folder)]
    return shlex.join([*words, "--yes"])


def _show(plan: PrunePlan) -> None:
    for variant in plan.variants:
        if not variant.kept and not variant.deleted:
            continue
        click.echo(f"{variant.repository}:{variant.key.partition(':')[2]}")
        for kept in variant.kept:
            click.echo(
                f"  keep    {_short(kept.digest)}  {_when(kept.created)}  "
                + ", ".join(kept.reasons)
            )
        for doomed in variant.deleted:
            click.echo(
                f"  delete  {_short(doomed.digest)}  {_when(doomed.created)}  " + _attached(doomed)
            )
    for doomed in plan.leftovers:
        click.echo(
            f"{doomed.repository}: delete the leftovers of {_short(doomed.digest)} "
            f"(image already deleted): {_attached(doomed)}"
        )
    if plan.unattributed:
        click.echo(
            f"kept {len(plan.unattributed)} untagged images no variant of the catalog claims "
            "(not built by socle, or their variant left the catalog)"
        )


def _short(digest: str) -> str:
    return digest[:19]


def _when(created: datetime | None) -> str:
    return created.strftime("%Y-%m-%dT%H:%M:%SZ") if created is not None else "-"


def _attached(doomed: Doomed) -> str:
    kinds = Counter(a.kind for a in doomed.attachments)
    if doomed.platforms:
        kinds["platform manifest"] = len(doomed.platforms)
    if not kinds:
        return "unsigned"
    return "with " + ", ".join(
        f"{count} {kind}{'s' if count > 1 else ''}" for kind, count in sorted(kinds.items())
    )


def _gc_hint(registry: str) -> str:
    """How to free the space: the registry's garbage collection, with socle's config if it is
    the registry `socle up` runs."""
    from socle.stack import StackPaths, configured_addr

    paths = StackPaths.default()
    if configured_addr(paths) == registry:
        return (
            "free the space with the registry's garbage collection, registry stopped:\n"
            f"  socle down && docker-registry garbage-collect {paths.registry_config}"
            f" && socle up --registry-addr {registry}"
        )
    return (
        "free the space with the registry's garbage collection, on the registry's host, "
        "stopped or read-only:\n  docker-registry garbage-collect CONFIG"
    )


COMMANDS = [prune_cmd]
