"""The console's prune button: socle.retention's plan applied, recorded as a run.

The same rules as `socle prune --yes` (see socle.retention): nothing that a tag,
a rendered deployment (--deployments), a pending tag move or the last `keep`
generations name is ever deleted. The run's events list every deleted manifest;
its summary says how many went, and that the registry's garbage collection
frees the space.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from socle.errors import SocleError
from socle.serve.runner import RunRequest

if TYPE_CHECKING:
    from socle.core.catalog import Duration
    from socle.registry.client import RegistryClient
    from socle.retention import Deletion
    from socle.serve.console import Console


@dataclass(frozen=True)
class PruneRequest(RunRequest):
    """A prune, with its policy (the runner coalesces a second prune into the waiting one)."""

    action: str = "prune"
    trigger: str = "prune"
    keep: int = 3
    older_than: Duration | None = None

    def policy(self) -> tuple[object, ...]:
        return (self.keep, self.older_than)


def open_client() -> RegistryClient:
    """The registry client prune deletes with (unit tests may replace it)."""
    from socle.registry.client import RegistryClient

    return RegistryClient.from_config()


def prune(console: Console, request: RunRequest) -> None:
    """Find what the policy lets go, delete it, and record the whole as a `prune` run."""
    from socle.retention import RetentionPolicy, apply_prune, find_prunable

    keep = request.keep if isinstance(request, PruneRequest) else 3
    older_than = request.older_than if isinstance(request, PruneRequest) else None
    catalog, graph = console.load()
    policy = RetentionPolicy(keep=keep, older_than=older_than)
    recorder = console.store.start_run(
        trigger="prune",
        catalog=console.catalog_key,
        registry=catalog.registry,
        reasons=[{"key": "", "reasons": [request.reason or "prune"]}],
        user=request.user,
        reason=request.reason,
    )
    words = f"keep {keep}" + (f", older than {older_than.text}" if older_than else "")
    recorder.record("pruning", None, f"prune: {words}")

    def deleted(deletion: Deletion) -> None:
        what = "already gone" if deletion.gone_already else "deleted"
        recorder.record(
            "deleted", deletion.repository, f"{what}: {deletion.kind} {deletion.digest}"
        )

    try:
        with open_client() as client:
            plan = find_prunable(catalog, graph, client, policy, console.settings.deployments)
            generations = sum(1 for d in plan.doomed if d.present)
            result = apply_prune(plan, client, deleted)
    except SocleError as exc:
        recorder.finish([], status="failed", summary=exc.message)
        raise
    except BaseException as exc:
        recorder.finish([], status="failed", summary=f"{type(exc).__name__}: {exc}")
        raise
    if not plan.doomed:
        summary = f"prune ({words}): nothing to prune"
    else:
        summary = (
            f"prune ({words}): deleted {result.manifests} manifests ({generations} generations); "
            "the registry's garbage collection frees the space"
        )
    recorder.finish([], status="succeeded", summary=summary)
