"""The `socle` command line. The only place that prints for the user and picks exit codes."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from socle import __version__
from socle.builders import BUILDERS
from socle.catalog import Catalog
from socle.drawing import FORMATS, draw
from socle.errors import SocleError
from socle.events import Status
from socle.graph import Graph
from socle.validate import validate

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def catalog_options(func: F) -> F:
    """`-c FILE` and `--registry HOST` on every command that reads a catalog."""
    func = click.option(
        "--registry",
        envvar="SOCLE_REGISTRY",
        help="Registry host[:port] to use instead of the catalog's (env SOCLE_REGISTRY).",
    )(func)
    return click.option(
        "-c",
        "--catalog",
        "catalog_path",
        type=click.Path(path_type=Path, dir_okay=False),
        envvar="SOCLE_CATALOG",
        default="catalog.yaml",
        show_default=True,
        help="The catalog file (env SOCLE_CATALOG).",
    )(func)


def open_catalog(catalog_path: Path, registry: str | None) -> tuple[Catalog, Graph]:
    return validate(catalog_path, registry=registry)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks and debug detail.")
@click.version_option(__version__, prog_name="socle")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """socle: build, test, sign and publish an organisation's trusted base images."""
    ctx.obj = {"verbose": verbose}


@cli.command("validate")
@catalog_options
def validate_cmd(catalog_path: Path, registry: str | None) -> None:
    """Check the catalog; print every problem as FILE:LINE:COL: error: message."""
    catalog, graph = open_catalog(catalog_path, registry)
    tags = sum(len(v.tags) for v in graph.variants)
    click.echo(
        f"{catalog_path}: ok: {len(catalog.images)} images, {len(graph.variants)} variants, "
        f"{tags} tags on {catalog.registry}"
    )


@cli.command("tags")
@catalog_options
@click.argument("images", nargs=-1)
def tags_cmd(catalog_path: Path, registry: str | None, images: tuple[str, ...]) -> None:
    """Print the fully qualified reference of every tag (of IMAGES, or all), sorted."""
    catalog, graph = open_catalog(catalog_path, registry)
    variants = graph.select(images) if images else graph.variants
    for ref in sorted(r for v in variants for r in v.refs(catalog.registry)):
        click.echo(ref)


@cli.command("graph")
@catalog_options
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
def graph_cmd(catalog_path: Path, registry: str | None, fmt: str) -> None:
    """Print the parent/child graph of every variant."""
    _, graph = open_catalog(catalog_path, registry)
    click.echo(draw(graph, fmt))


@cli.command("parents")
@catalog_options
@click.argument("image")
def parents_cmd(catalog_path: Path, registry: str | None, image: str) -> None:
    """Print the chain of parents of IMAGE (`java`, `java:8-debian12`), nearest first."""
    _, graph = open_catalog(catalog_path, registry)
    for variant in graph.select([image]):
        chain = " <- ".join(p.key for p in graph.ancestors(variant)) or "(none: an OS image)"
        click.echo(f"{variant.key}: {chain}")


@cli.command("children")
@catalog_options
@click.argument("image")
def children_cmd(catalog_path: Path, registry: str | None, image: str) -> None:
    """Print every variant built on IMAGE, directly or not, in build order."""
    _, graph = open_catalog(catalog_path, registry)
    seen: dict[str, None] = {}
    for variant in graph.select([image]):
        seen.update((d.key, None) for d in graph.descendants(variant))
    for key in (v.key for v in graph.variants if v.key in seen):
        click.echo(key)


@cli.command("plan")
@catalog_options
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def plan_cmd(catalog_path: Path, registry: str | None, as_json: bool) -> None:
    """Show what must be built and why, against what the registry holds now."""
    from socle.display import plan_table
    from socle.planning import plan_against_registry

    catalog, graph = open_catalog(catalog_path, registry)
    plan = plan_against_registry(catalog, graph)
    if as_json:
        click.echo(plan.to_json())
    else:
        plan_table(plan)


@cli.command("build")
@catalog_options
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    help="Images built in parallel.",
)
@click.option(
    "--only",
    multiple=True,
    metavar="IMAGE",
    help="Limit the roots to IMAGE (`java`, `java:17`); its descendants still rebuild.",
)
@click.option(
    "--cascade/--no-cascade",
    default=True,
    show_default=True,
    help="Rebuild every descendant of what is rebuilt.",
)
@click.option(
    "--builder",
    type=click.Choice(sorted(BUILDERS)),
    default="buildah",
    show_default=True,
    envvar="SOCLE_BUILDER",
)
@click.option(
    "--dry-run", is_flag=True, help="Show the plan and what would be built; change nothing."
)
@click.option(
    "--keep-work", is_flag=True, help="Keep the work folder (layouts, logs) for debugging."
)
@click.option(
    "--reports",
    type=click.Path(path_type=Path, file_okay=False),
    help="Write gate reports here (JUnit XML of the image tests, SBOMs, scans).",
)
def build_cmd(
    catalog_path: Path,
    registry: str | None,
    jobs: int,
    only: tuple[str, ...],
    cascade: bool,
    builder: str,
    dry_run: bool,
    keep_work: bool,
    reports: Path | None,
) -> None:
    """Build, push and tag what the plan says, parents first, in parallel."""
    from socle.display import RunDisplay, plan_table, run_summary
    from socle.job import BuildJob, JobSettings
    from socle.registry.state import RegistryState

    catalog, graph = open_catalog(catalog_path, registry)
    settings = JobSettings(builder, jobs, only, cascade, keep_work, reports)
    with RegistryState.from_config() as state:
        job = BuildJob(catalog, graph, state, settings)
        if dry_run:
            plan_table(job.plan())
            return
        with job.lock:
            plan = job.plan()
            with RunDisplay(job.pending(plan)) as display:
                outcomes = job.execute(plan, display)
    run_summary(outcomes)
    failed = [o for o in outcomes if o.status in (Status.FAILED, Status.BLOCKED)]
    if failed:
        names = ", ".join(f"{o.key} ({o.status.value})" for o in failed)
        raise SocleError(f"{len(failed)} image(s) not published: {names}")


@cli.command("why")
@catalog_options
@click.argument("image")
def why_cmd(catalog_path: Path, registry: str | None, image: str) -> None:
    """Print every reason IMAGE (each of its variants) would be rebuilt now, or that it is current."""
    from socle.planning import plan_against_registry

    catalog, graph = open_catalog(catalog_path, registry)
    wanted = {v.key for v in graph.select([image])}
    plan = plan_against_registry(catalog, graph)
    for step in plan.steps:
        if step.variant.key not in wanted:
            continue
        if not step.reasons:
            digest = step.published.digest if step.published else ""
            click.echo(f"{step.variant.key}: current ({digest})")
            continue
        click.echo(f"{step.variant.key}: rebuild")
        for reason in step.reasons:
            click.echo(f"  - {reason.text}")


@cli.group("pins")
def pins_group() -> None:
    """Upstream images pinned by digest."""


@pins_group.command("update")
@catalog_options
def pins_update_cmd(catalog_path: Path, registry: str | None) -> None:
    """Re-resolve every upstream tag to its digest and rewrite the pins file."""
    from socle import pins
    from socle.registry.client import RegistryClient

    catalog, _ = open_catalog(catalog_path, registry)
    assert catalog.pins_path is not None
    with RegistryClient.from_config() as client:
        changes = pins.resolve(catalog, client)
    pins.write(catalog.pins_path, changes)
    for change in changes:
        if change.inline:
            note = (
                "pinned inline in the catalog; edit it there"
                if change.changed
                else "inline, current"
            )
            click.echo(f"{change.key}: {change.upstream} -> {change.after} ({note})")
        elif change.changed:
            click.echo(
                f"{change.key}: {change.upstream} {change.before or 'unpinned'} -> {change.after}"
            )
        else:
            click.echo(f"{change.key}: {change.upstream} unchanged")
    moved = sum(1 for c in changes if c.changed and not c.inline)
    click.echo(f"{catalog.pins_path}: {moved} pin(s) changed")


@cli.command("up")
@click.option(
    "--registry-addr",
    default="127.0.0.1:5000",
    show_default=True,
    help="Where the local registry listens.",
)
@click.option(
    "--builder",
    type=click.Choice(sorted(BUILDERS)),
    default="buildah",
    show_default=True,
    envvar="SOCLE_BUILDER",
    help="docker also starts dockerd when no engine runs.",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Default: $XDG_DATA_HOME/socle.",
)
def up_cmd(registry_addr: str, builder: str, data_dir: Path | None) -> None:
    """Start the local registry (and dockerd for the docker builder) if not running."""
    from socle import stack

    for line in stack.up(
        stack.StackPaths.default(data_dir), registry_addr=registry_addr, docker=builder == "docker"
    ):
        click.echo(line)


@cli.command("down")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False), default=None)
def down_cmd(data_dir: Path | None) -> None:
    """Stop what `socle up` started, and only that."""
    from socle import stack

    for line in stack.down(stack.StackPaths.default(data_dir)):
        click.echo(line)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and turn errors into one message and an exit code."""
    verbose = "-v" in (argv or sys.argv[1:]) or "--verbose" in (argv or sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="socle", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except SocleError as exc:
        if verbose:
            traceback.print_exc()
        click.echo(exc.diagnostics(), err=True)
        sys.exit(exc.exit_code)
    sys.exit(EXIT_OK)
