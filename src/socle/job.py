"""One build job: lock, plan, execute — what `socle build` and `socle watch` run."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from socle.builders import BUILDERS, Builder
from socle.core.catalog import Catalog
from socle.core.graph import Graph
from socle.core.plan import Plan, Reason
from socle.errors import InputError, SocleError
from socle.events import Observer, ignore
from socle.executor import Executor, Outcome, RunOptions
from socle.journal import Journal, Record
from socle.lock import RunLock
from socle.planning import plan_with_state
from socle.registry.state import RegistryState
from socle.stack import StackPaths
from socle.vcs import Revision

if TYPE_CHECKING:  # signing pulls in cryptography: imported only when a key signs
    from socle.gates import Gate, Publisher
    from socle.signing import SigningKey


@dataclass(frozen=True)
class JobSettings:
    """How to run a build job (the CLI's options)."""

    builder: str = "buildah"
    jobs: int = 2
    only: tuple[str, ...] = ()
    cascade: bool = True
    keep_work: bool = False
    reports: Path | None = None  # JUnit XML and other gate reports go here
    security_updates: bool = False  # check published OS images for pending security updates
    scan_db: str | None = None  # overrides the catalog's scan data source


def selection(graph: Graph, only: Iterable[str], *, cascade: bool) -> set[str] | None:
    """Variant keys a run may build: the `only` roots and (with cascade) their descendants.

    None means everything. A needed descendant is never left out unless
    `cascade` is False.
    """
    names = list(only)
    if not names:
        return None
    roots = graph.select(names)
    keys = {v.key for v in roots}
    if cascade:
        keys |= {d.key for v in roots for d in graph.descendants(v)}
    return keys


class BuildJob:
    """Plans and executes one catalog against its registry, holding the run lock."""

    def __init__(
        self,
        catalog: Catalog,
        graph: Graph,
        state: RegistryState,
        settings: JobSettings,
        *,
        lock_dir: Path | None = None,
        signing_key: SigningKey | None = None,
    ) -> None:
        self.catalog = catalog
        self.graph = graph
        self.state = state
        self.settings = settings
        self.lock = RunLock(
            lock_dir or StackPaths.default().root / "locks", catalog.path, catalog.registry
        )
        self.selected = selection(graph, settings.only, cascade=settings.cascade)
        self.signing_key = signing_key

    @cached_property
    def builder(self) -> Builder:
        return BUILDERS[self.settings.builder]()

    def plan(self, extra: Mapping[str, Sequence[Reason]] | None = None) -> Plan:
        """The plan; with `security_updates`, OS images with pending security fixes rebuild."""
        selected = self.selected
        plan = plan_with_state(self.catalog, self.graph, self.state, extra=extra, selected=selected)
        if not self.settings.security_updates:
            return plan
        from socle.detectors import security_reasons  # apt's simulation: not for every plan

        found = security_reasons(self.catalog, plan, self.state.client, self.builder)
        if not found:
            return plan
        return plan_with_state(
            self.catalog,
            self.graph,
            self.state,
            extra={**(extra or {}), **found},
            selected=selected,
        )

    def interrupted(self) -> list[Record]:
        """Families an interrupted run left half-moved (its recorded tag moves not done)."""
        journal = Journal(self.state.client, self.catalog.registry, self.catalog.namespace)
        return journal.pending(v.image.repository for v in self.graph.variants)

    def check_parents(self, plan: Plan, expected: str | None = None) -> None:
        """Refuse to build on a parent outside the selection that is missing or unexpected.

        A CI engine runs one variant per job (`--only KEY --no-cascade`) and passes
        down the digest its parent's job published (`--expect-parent`): building on
        anything else would publish a child of an image the pipeline never saw.
        """
        if self.selected is None:
            return
        steps = {s.variant.key: s for s in plan.steps}
        outside = [
            (key, parent)
            for key in sorted(self.selected)
            if (parent := steps[key].variant.parent) is not None and parent.key not in self.selected
        ]
        if expected is not None and not outside:
            raise InputError(
                f"--expect-parent: {', '.join(sorted(self.selected))} "
                "build on no parent outside the selection",
                hint="drop --expect-parent for a root image's job",
            )
        for key, parent in outside:
            published = steps[parent.key].published
            if published is None:
                raise SocleError(
                    f"{key}: its parent {parent.key} is not published yet",
                    hint=f"the job that builds {parent.key} must succeed first",
                )
            if expected is not None and published.digest != expected:
                raise SocleError(
                    f"{key}: its parent {parent.key} is published as {published.digest}, "
                    f"not {expected} as the pipeline expects",
                    hint=f"{parent.key} was rebuilt since this pipeline started: "
                    "run the pipeline again from that parent",
                )

    def promote(self, plan: Plan, observer: Observer = ignore) -> list[str]:
        """Move the floating tags of every family whose variants are all current and healthy.

        The same code as `build`'s last phase, all or nothing per family; returns one
        line per family it left alone, saying what blocks it.
        """
        return self._executor(self.builder, observer).promote(plan)

    def pending(self, plan: Plan) -> int:
        """How many builds this job will run."""
        return sum(
            1 for s in plan.builds() if self.selected is None or s.variant.key in self.selected
        )

    @property
    def moves_floating_tags(self) -> bool:
        """False for a pipeline's per-variant job (`--only KEY --no-cascade`).

        The jobs of one graph level run at once on several agents: none can know
        whether its family is complete when the others finish, and a retried job
        must write nothing. Such a job sets its exact tag only; `socle promote`,
        the pipeline's last step, moves the floating tags, all or nothing per family.
        """
        return self.settings.cascade or not self.settings.only

    def check_emulation(self, plan: Plan) -> None:
        """Refuse, before anything is built, a run needing an architecture this host cannot run.

        A foreign platform's bootstrap and `RUN` steps execute its programs under
        qemu-user emulation; without it the build would fail midway, once per image.
        """
        from socle.emulation import require_emulation

        needed = {
            arch
            for step in plan.builds()
            if self.selected is None or step.variant.key in self.selected
            for arch in step.variant.architectures
        }
        for arch in sorted(needed):
            require_emulation(arch)

    def execute(self, plan: Plan, observer: Observer = ignore) -> list[Outcome]:
        """Build what `plan` says within the selection, then move tags.

        The gates, the publishers and the catalog's git revision are for the
        images a run produces: a run with nothing to build loads no scanner data
        and no signer, and runs no git.
        """
        self.check_emulation(plan)
        executor = self._executor(self.builder, observer, building=self.pending(plan) > 0)
        return executor.run(plan, selected=self.selected, floating=self.moves_floating_tags)

    def _executor(self, builder: Builder, observer: Observer, *, building: bool = True) -> Executor:
        return Executor(
            self.catalog,
            self.graph,
            client=self.state.client,
            builder=builder,
            observer=observer,
            options=RunOptions(jobs=self.settings.jobs, keep_work=self.settings.keep_work),
            revision=None if building else Revision(None, None),
            gates=self.gates(builder) if building else (),
            publishers=self.publishers() if building else (),
        )

    def gates(self, builder: Builder) -> list[Gate]:
        """Tests, SBOM, then the scan and the catalog's CVE policy, in that order."""
        from socle.gates import SbomGate, ScanGate, TestGate  # a no-op build makes no gate
        from socle.scan import SCANNERS, ScanSettings

        reports = self.settings.reports
        scan = self.catalog.scan
        scanner = None
        if scan is not None or self.settings.scan_db:
            name = scan.scanner if scan is not None else "debian"
            db = self.settings.scan_db or (scan.db if scan is not None else None)
            scanner = SCANNERS[name](ScanSettings(db=db))
        return [
            TestGate(builder, reports),
            SbomGate(),
            ScanGate(scanner, self.catalog.policy, reports),
        ]

    def publishers(self) -> list[Publisher]:
        """The SBOM of the final digest, then signatures and attestations when a key is given."""
        from socle.gates import SbomPublisher, SignPublisher

        found: list[Publisher] = [SbomPublisher(self.settings.reports)]
        if self.signing_key is not None:
            from socle.signing.attach import KeySigner

            signer = SignPublisher(
                KeySigner(self.state.client, self.signing_key),
                catalog=self.catalog.path,
                builder=self.settings.builder,
            )
            found.append(signer)
        return found
