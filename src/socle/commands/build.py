"""Commands that compare the catalog with the registry: plan, why, build."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from socle.commands.options import builder_option, catalog_options, open_catalog, security_option
from socle.errors import InputError, SocleError
from socle.events import Observer, Status
from socle.executor import Outcome
from socle.job import BuildJob, JobSettings

if TYPE_CHECKING:
    from socle.history.interface import History


@click.command("plan")
@catalog_options
@builder_option
@security_option(default=False)
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def plan_cmd(
    catalog_path: Path, registry: str | None, builder: str, security_updates: bool, as_json: bool
) -> None:
    """Show what must be built and why, against what the registry holds now."""
    from socle.commands.display import plan_table
    from socle.registry.state import RegistryState

    catalog, graph = open_catalog(catalog_path, registry)
    settings = JobSettings(builder=builder, security_updates=security_updates)
    with RegistryState.from_config() as state:
        job = BuildJob(catalog, graph, state, settings)
        plan = job.plan()
        interrupted = job.interrupted()
    if as_json:
        data = json.loads(plan.to_json())
        data["interrupted"] = [
            {"repository": r.repository, "tags": [m.tag for m in r.moves], "since": r.created}
            for r in interrupted
        ]
        click.echo(json.dumps(data, indent=2))
        return
    plan_table(plan)
    for record in interrupted:
        click.echo(f"socle: {record.describe()}; the next `socle build` completes it first")


@click.command("why")
@catalog_options
@builder_option
@security_option(default=True)
@click.argument("image")
def why_cmd(
    catalog_path: Path, registry: str | None, builder: str, security_updates: bool, image: str
) -> None:
    """Print every reason IMAGE (each of its variants) would be rebuilt now, or that it is current."""
    from socle.registry.state import RegistryState

    catalog, graph = open_catalog(catalog_path, registry)
    wanted = graph.select([image])
    lineage = {a.key for v in wanted for a in [v, *graph.ancestors(v)]}
    settings = JobSettings(builder=builder, security_updates=False)
    with RegistryState.from_config() as state:
        job = BuildJob(catalog, graph, state, settings)
        plan = job.plan()
        if security_updates:
            from socle.detectors import security_reasons

            lineage_variants = [v for v in graph.variants if v.key in lineage]
            found = security_reasons(catalog, plan, state.client, job.builder, lineage_variants)
            plan = job.plan(extra=found) if found else plan
    keys = {v.key for v in wanted}
    for step in (s for s in plan.steps if s.variant.key in keys):
        if not step.reasons:
            digest = step.published.digest if step.published else ""
            click.echo(f"{step.variant.key}: current ({digest})")
            continue
        click.echo(f"{step.variant.key}: rebuild")
        for reason in step.reasons:
            click.echo(f"  - {reason.text}")


@click.command("build")
@catalog_options
@builder_option
@security_option(default=False)
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
@click.option(
    "--events",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one JSON line per event on stdout (for log collectors).",
)
@click.option(
    "--notify",
    "notify_url",
    envvar="SOCLE_NOTIFY_URL",
    metavar="URL",
    help="POST a Slack-compatible summary of the run here (env SOCLE_NOTIFY_URL).",
)
@click.option(
    "--scan-db",
    envvar="SOCLE_DEBIAN_TRACKER",
    metavar="FILE|URL",
    help="Security Tracker data for the scan gate, instead of the catalog's `scan.db`.",
)
@click.option(
    "--sign-key",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="SOCLE_SIGNING_KEY",
    help="Sign and attest every image with this cosign key (passphrase: env SOCLE_PASSWORD).",
)
@click.option(
    "--expect-parent",
    metavar="DIGEST",
    callback=lambda _ctx, _param, value: _digest_option(value),
    help="Refuse to build unless the selected variant's parent is published at DIGEST "
    "(what a CI pipeline's parent job passed down).",
)
@click.option(
    "--digest-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="After the run, write the digest of the one variant --only names here "
    "(for the pipeline's child jobs).",
)
@click.option(
    "--db",
    "db_url",
    envvar="SOCLE_DB",
    metavar="URL",
    help="Record the run in this history database (default: SQLite in socle's data folder).",
)
def build_cmd(
    catalog_path: Path,
    registry: str | None,
    builder: str,
    security_updates: bool,
    jobs: int,
    only: tuple[str, ...],
    cascade: bool,
    dry_run: bool,
    keep_work: bool,
    reports: Path | None,
    events: str,
    notify_url: str | None,
    scan_db: str | None,
    sign_key: Path | None,
    expect_parent: str | None,
    digest_file: Path | None,
    db_url: str | None,
) -> None:
    """Build, test, push and tag what the plan says, parents first, in parallel."""
    from socle.commands.display import plan_table, run_summary
    from socle.registry.state import RegistryState

    catalog, graph = open_catalog(catalog_path, registry)
    settings = JobSettings(
        builder, jobs, only, cascade, keep_work, reports, security_updates, scan_db
    )
    key = None
    if sign_key is not None and not dry_run:
        from socle.commands.signing import read_signing_key

        key = read_signing_key(sign_key)
    elif not dry_run:
        click.echo(
            "socle: images will not be signed (pass --sign-key; see `socle keygen`)", err=True
        )
    with RegistryState.from_config() as state:
        job = BuildJob(catalog, graph, state, settings, signing_key=key)
        if digest_file is not None and (job.selected is None or len(job.selected) != 1):
            raise InputError(
                "--digest-file needs --only naming exactly one variant",
                hint="e.g. --only java:17-debian12 --no-cascade",
            )
        if expect_parent is not None and job.selected is None:
            raise InputError(
                "--expect-parent needs --only naming the variant to build",
                hint="e.g. --only java:17-debian12 --no-cascade --expect-parent sha256:...",
            )
        if dry_run:
            plan_table(job.plan())
            return
        with open_history(db_url) as history:
            outcomes = run_job(
                job,
                events=events,
                notify_url=notify_url,
                expect_parent=expect_parent,
                history=history,
            )
    if events == "text":
        run_summary(outcomes)
    if not job.moves_floating_tags:
        click.echo(
            f"socle: floating tags left to `socle promote -c {catalog_path}` (--no-cascade)",
            err=True,
        )
    fail_on(outcomes)
    if digest_file is not None:
        from socle.atomic import write_text

        (outcome,) = (o for o in outcomes if job.selected and o.key in job.selected)
        write_text(digest_file, f"{outcome.digest}\n")


def _digest_option(value: str | None) -> str | None:
    if value is None:
        return None
    from socle.oci.reference import check_digest

    try:
        return check_digest(value)
    except SocleError as exc:
        raise click.BadParameter(exc.message) from exc


@click.command("promote")
@catalog_options
@builder_option
@click.option(
    "--events",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one JSON line per event on stdout.",
)
def promote_cmd(catalog_path: Path, registry: str | None, builder: str, events: str) -> None:
    """Move the floating tags of every family whose variants are all current: no build.

    The last step of a pipeline that built each variant in its own job. All or
    nothing per family; exits 1 naming each family it left alone and why.
    """
    from socle.commands.display import RunDisplay
    from socle.notify import JsonLines
    from socle.registry.state import RegistryState

    catalog, graph = open_catalog(catalog_path, registry)
    with RegistryState.from_config() as state:
        job = BuildJob(catalog, graph, state, JobSettings(builder=builder))
        with job.lock:
            plan = job.plan()
            if events == "json":
                blocked = job.promote(plan, JsonLines())
            else:
                with RunDisplay(0) as display:
                    blocked = job.promote(plan, display)
    for line in blocked:
        click.echo(f"socle: {line}", err=True)
    if blocked:
        raise SocleError(f"{len(blocked)} family(ies) not promoted")
    if events == "text":
        click.echo(f"promoted: every family of {len(plan.steps)} variant(s) is current")


def run_job(
    job: BuildJob,
    *,
    events: str,
    notify_url: str | None,
    expect_parent: str | None = None,
    history: History | None = None,
    trigger: str = "cli",
) -> list[Outcome]:
    """Lock, plan and execute `job` with the chosen displays; record it; notify at the end."""
    from socle.commands.display import RunDisplay
    from socle.notify import JsonLines, WebhookNotifier, tee
    from socle.recording import recorded

    with job.lock:
        plan = job.plan()
        job.check_parents(plan, expect_parent)
        observers: list[Observer] = []
        notifier = (
            WebhookNotifier(notify_url, title=f"socle {job.catalog.path}") if notify_url else None
        )
        if notifier is not None:
            observers.append(notifier)
        with recorded(
            history,
            trigger=trigger,
            catalog=str(job.catalog.path.resolve()),
            registry=job.catalog.registry,
            plan=plan,
            selected=job.selected,
        ) as recording:
            observers.append(recording)
            if events == "json":
                observers.append(JsonLines())
                recording.outcomes = job.execute(plan, tee(*observers))
            else:
                with RunDisplay(job.pending(plan)) as display:
                    recording.outcomes = job.execute(plan, tee(display, *observers))
        if notifier is not None:
            notifier.finish()
            notifier.close()
    return recording.outcomes


def open_history(url: str | None) -> History:
    """The history database (`--db`, SOCLE_DB, or SQLite in socle's data folder), migrated.

    A SQLite file already at this socle's schema is written with sqlite3, without
    importing SQLAlchemy (a no-op build would spend most of its time on that import);
    anything else, or anything to migrate or refuse, goes through HistoryStore.
    """
    from socle.history.interface import default_url
    from socle.history.sqlite import open_current

    url = url or default_url()
    current = open_current(url)
    if current is not None:
        return current
    from socle.history.store import HistoryStore

    return HistoryStore.open(url)


def fail_on(outcomes: list[Outcome]) -> None:
    failed = [o for o in outcomes if o.status in (Status.FAILED, Status.BLOCKED)]
    if failed:
        names = ", ".join(f"{o.key} ({o.status.value})" for o in failed)
        raise SocleError(f"{len(failed)} image(s) not published: {names}")


COMMANDS = [plan_cmd, why_cmd, build_cmd, promote_cmd]
