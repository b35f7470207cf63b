"""The console's runs, recorded like every other: build, promote, prune."""

from __future__ import annotations

from typing import TYPE_CHECKING

from socle.core.plan import Reason
from socle.job import BuildJob, JobSettings
from socle.recording import recorded
from socle.registry.state import RegistryState

if TYPE_CHECKING:
    from socle.serve.console import Console
    from socle.serve.runner import RunRequest


def execute(console: Console, request: RunRequest) -> None:
    """Build (or promote, or prune) as `request` asks, holding the catalog's run lock."""
    if request.action == "prune":
        from socle.serve.pruning import prune

        prune(console, request)
        return
    settings = console.settings
    catalog, graph = console.load()
    job_settings = JobSettings(
        builder=settings.builder, jobs=settings.jobs, only=tuple(sorted(request.only))
    )
    with RegistryState.from_config() as state:
        job = BuildJob(catalog, graph, state, job_settings, signing_key=console.signing_key)
        with job.lock:
            asked = [Reason("asked", request.reason or "rebuild asked in the console")]
            plan = job.plan(extra=dict.fromkeys(request.only, asked) if request.force else None)
            with recorded(
                console.store,
                trigger=request.trigger if request.action == "build" else request.action,
                catalog=console.catalog_key,
                registry=catalog.registry,
                plan=plan,
                selected=job.selected,
                user=request.user,
                reason=request.reason,
            ) as recording:
                if request.action == "promote":
                    job.promote(plan, recording)
                    recording.outcomes = []
                else:
                    recording.outcomes = job.execute(plan, recording)
