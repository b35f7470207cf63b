"""Execute a plan: produce each image, push it by digest, then move its tags.

Parents go before children and independent images build in parallel, up to
`jobs` at a time; a child starts on its parent's final image as soon as the
parent is built, while the parent's gates run, and is published only after the
parent is accepted. Each image is pushed by digest and given its exact tag as
soon as it is accepted; floating tags (`7`, `8-centos7`, `latest`) move in a
last phase, and only for variants whose whole ancestry succeeded, so a failed
image never leaves its family half-moved. A failure blocks its subtree and
lets unrelated branches finish.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from socle.builders.interface import Builder, BuildRequest
from socle.canonical import canonical_json, sha256_digest
from socle.core.catalog import Catalog, Kind
from socle.core.convention import Variant
from socle.core.graph import Graph
from socle.core.plan import Action, Plan, Step
from socle.core.platforms import arch_of, platform_json, platform_of
from socle.core.state import FINGERPRINT, GATES, INPUTS
from socle.errors import InputError, SocleError
from socle.events import Event, Observer, Status, ignore
from socle.journal import Journal, Move
from socle.oci.media import (
    BASE_DIGEST,
    BASE_NAME,
    CREATED,
    OCI_INDEX,
    REF_NAME,
    REVISION,
    SOURCE,
    VERSION,
)
from socle.oci.reference import Reference
from socle.registry.interface import ImageSource, Registry
from socle.timestamps import day_epoch, rfc3339
from socle.vcs import Revision

if TYPE_CHECKING:  # what only a run that builds needs: a no-op build never imports them
    from socle.gates import Gate, Publisher, Subject

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What happened to one variant in a run."""

    step: Step
    status: Status
    digest: str | None = None
    seconds: float = 0.0
    build_seconds: float = 0.0  # the builder's (or bootstrap's, or copy's) own time, no gates
    error: str | None = None
    tags_moved: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what each gate found
    details: dict[str, object] = field(default_factory=dict)  # the gates' structured results

    @property
    def key(self) -> str:
        return self.step.variant.key


@dataclass(frozen=True)
class LocalImage:
    """An image of this run whose config and layers are final: its layout, and its name
    in the builder's storage once `load` put it there (idempotent, shared with its gates).

    Its children build on it there while it is still gated, pushed and signed.
    """

    name: str
    layout: Path
    load: Callable[[], None]


@dataclass(frozen=True)
class _Base:
    """What a build starts FROM: `image` for its BASE_IMAGE, and where its parent's blobs are."""

    image: str
    source: ImageSource
    ref: Reference


@dataclass(frozen=True)
class RunOptions:
    jobs: int = 2
    work_dir: Path | None = None
    keep_work: bool = False
    source_date_epoch: int | None = None  # None: the run's day at 00:00 UTC


class Executor:
    """Runs a plan against a registry with one builder."""

    def __init__(
        self,
        catalog: Catalog,
        graph: Graph,
        *,
        client: Registry,
        builder: Builder,
        observer: Observer = ignore,
        options: RunOptions | None = None,
        revision: Revision | None = None,
        gates: Sequence[Gate] = (),
        publishers: Sequence[Publisher] = (),
        fetch: Callable[[Reference, Path], Path] | None = None,
    ) -> None:
        self.catalog = catalog
        self.graph = graph
        self.client = client
        self.builder = builder
        self.observer = observer
        self.options = options or RunOptions()
        self.revision = revision or Revision.of(catalog.path.parent)
        self.gates = tuple(gates)
        self.publishers = tuple(publishers)
        self.fetch = fetch or self._fetch_published  # a published image, for the gates
        # Local images of this run: removing one while a parallel build pulls layers it
        # shares made buildah fail with "layer not known", so they go at the end.
        self._leftovers: list[str] = []
        self._lock = threading.Lock()
        # Set when the run is interrupted (Ctrl-C): builds still running publish nothing more.
        self._stopping = threading.Event()
        # This run's images: each one's whole production, and its push by digest (set once
        # its gates passed and its final digest is in the registry, before it is signed).
        self._runs: dict[str, Future[str]] = {}
        self._pushes: dict[str, Future[str]] = {}
        # Set once an image's final content is in the builder's storage (by architecture,
        # None for a single-platform image): its children may start building on it.
        self._locals: dict[str, Future[dict[str | None, LocalImage]]] = {}
        self._uploads: dict[str, Future[None]] = {}  # each image's blob upload beside its gates
        self._platform_digests: dict[str, dict[str, str]] = {}  # pushed: key -> arch -> digest
        self._keys: set[str] = set()  # what this run builds
        self.journal = Journal(client, catalog.registry, catalog.namespace)
        self._run_token = os.urandom(4).hex()
        # Every image of the run is stamped with this time, not the clock's: the same
        # inputs on the same day give the same digest (the real times are in the
        # provenance attestation and the run history).
        self.epoch = (
            self.options.source_date_epoch
            if self.options.source_date_epoch is not None
            else day_epoch()
        )

    def _local_name(self, variant: Variant, arch: str | None = None, *, final: bool = True) -> str:
        """The builder's local name for this run's image of `variant` (on `arch`).

        Unique to the run: two socle runs on one machine (a CLI build beside
        `socle watch`, two CI jobs) share the builder's storage, and one must
        never remove or overwrite the image the other is still pushing. The
        `final` image (`socle-build/TOKEN/final/...`) is what will be published,
        for the gates and the children; the other is the builder's own result.
        """
        suffix = f"-{arch}" if arch is not None else ""
        folder = f"{self._run_token}/final" if final else self._run_token
        return f"socle-build/{folder}/{variant.image.name}:{variant.exact_tag}{suffix}"

    def run(
        self, plan: Plan, *, selected: set[str] | None = None, floating: bool = True
    ) -> list[Outcome]:
        """Build what the plan says (limited to `selected` keys if given), then move tags.

        Moves an interrupted run recorded but did not finish are completed first,
        so no family stays half-moved while this run builds. With `floating`
        False only exact tags are set: a pipeline's per-variant job leaves the
        floating tags to its final `promote`.
        """
        self.complete_interrupted(plan)
        outcomes = {
            s.variant.key: Outcome(s, Status.SKIPPED, s.published.digest if s.published else None)
            for s in plan.steps
        }
        todo = [
            s
            for s in plan.steps
            if s.action is Action.BUILD and (selected is None or s.variant.key in selected)
        ]
        for step in plan.steps:
            if step not in todo and step.action is Action.BUILD:
                outcomes[step.variant.key].status = Status.QUEUED  # left out by --only
        import tempfile

        work = Path(tempfile.mkdtemp(prefix="socle-", dir=self.options.work_dir))
        try:
            self._build_all(todo, outcomes, work)
        except BaseException:
            self._clean(work)
            raise
        # The local images go while the tags move: neither waits for the other.
        cleaning = threading.Thread(target=self._clean, args=(work,), name="socle-clean")
        cleaning.start()
        try:
            if floating:
                self._move_tags(plan, outcomes)
        finally:
            cleaning.join()
        return [outcomes[s.variant.key] for s in plan.steps]

    def _clean(self, work: Path) -> None:
        """Remove this run's local images and, unless kept, its work folder."""
        if self._leftovers:
            self.builder.remove(*dict.fromkeys(self._leftovers))
        self._leftovers.clear()
        if not self.options.keep_work:
            shutil.rmtree(work, ignore_errors=True)

    # -- building ---------------------------------------------------------------------

    def _build_all(self, todo: list[Step], outcomes: dict[str, Outcome], work: Path) -> None:
        keys = self._keys = {s.variant.key for s in todo}
        self._runs.clear()
        self._pushes.clear()
        self._locals.clear()
        self._uploads.clear()
        waiting = {s.variant.key: s for s in todo}
        running: dict[Future[str], Step] = {}
        with ThreadPoolExecutor(max_workers=max(1, self.options.jobs)) as pool:
            try:
                self._schedule(pool, waiting, running, keys, outcomes, work)
            except BaseException:
                # Interrupted: queued builds never start, running ones stop before they push or tag.
                self._stopping.set()
                for future in running:
                    future.cancel()
                raise

    def _schedule(
        self,
        pool: ThreadPoolExecutor,
        waiting: dict[str, Step],
        running: dict[Future[str], Step],
        keys: set[str],
        outcomes: dict[str, Outcome],
        work: Path,
    ) -> None:
        """Start every build whose parent is built, as workers free up, until none is left.

        A child starts as soon as its parent's own build succeeded (its first step
        loads the parent's final, normalised image), while the parent's gates, push
        and signing go on; the child is pushed only once its parent is accepted,
        and reported blocked if the parent is refused. A child that cannot build
        on the local parent (a single-platform child of an index) waits for the
        parent's push by digest.
        """
        order = {key: i for i, key in enumerate(waiting)}  # the plan's: parents first
        while waiting or running:
            for key, step in list(waiting.items()):
                parent = step.variant.parent
                if parent is not None and parent.key in keys and not self._startable(step.variant):
                    continue
                del waiting[key]
                outcomes[key].status = Status.BUILDING
                self.observer(Event(Status.BUILDING, key, "; ".join(r.text for r in step.reasons)))
                self._pushes[key] = Future()
                self._locals[key] = Future()
                self._runs[key] = future = pool.submit(self._produce, step, outcomes, work)
                running[future] = step
            if not running:
                break
            signals: list[Future[Any]] = list(running)
            for s in running.values():
                signals += (self._pushes[s.variant.key], self._locals[s.variant.key])
            done, _ = wait(
                [f for f in signals if not f.done()] or signals, return_when=FIRST_COMPLETED
            )
            # Parents first: a child never ends before its parent, but both may be done here.
            finished = [f for f in running if f in done]
            for future in sorted(finished, key=lambda f: order[running[f].variant.key]):
                step = running.pop(future)
                self._finish(step, future, outcomes, waiting)

    def _pushed(self, key: str) -> bool:
        push = self._pushes.get(key)
        return push is not None and push.done() and push.exception() is None

    def _startable(self, variant: Variant) -> bool:
        """Whether `variant`, whose parent this run builds, can start building now."""
        assert variant.parent is not None
        if all(self._local_base(variant, arch) is not None for arch in _build_arches(variant)):
            return True
        return self._pushed(variant.parent.key)

    def _local_base(self, variant: Variant, arch: str | None) -> LocalImage | None:
        """This run's local image of `variant`'s parent that a build for `arch` starts FROM."""
        parent = variant.parent
        ready = self._locals.get(parent.key) if parent is not None else None
        if parent is None or ready is None or not ready.done() or ready.exception() is not None:
            return None
        return ready.result().get(arch if parent.multi_platform else None)

    def _has_children(self, variant: Variant) -> bool:
        """Whether this run builds an image directly on `variant`."""
        return any(
            child.parent is not None and child.parent.key == variant.key
            for child in self.graph.descendants(variant)
            if child.key in self._keys
        )

    def _finish(
        self,
        step: Step,
        future: Future[str],
        outcomes: dict[str, Outcome],
        waiting: dict[str, Step],
    ) -> None:
        outcome = outcomes[step.variant.key]
        try:
            outcome.digest = future.result()
        except _ParentFailed as exc:  # built beside its parent, which was then refused
            outcome.status, outcome.error = Status.BLOCKED, f"{exc.parent} failed"
            self.observer(Event(Status.BLOCKED, outcome.key, f"not built: {exc.parent} failed"))
            return
        except Exception as exc:  # one image's failure must not stop unrelated branches
            # With its hint: the fix (`docker login HOST`...) must reach the user of a build too.
            message = (
                exc.diagnostics() if isinstance(exc, SocleError) else f"{type(exc).__name__}: {exc}"
            )
            if not isinstance(exc, SocleError):
                log.error("unexpected error building %s", outcome.key, exc_info=exc)
            outcome.status, outcome.error = Status.FAILED, message
            self.observer(Event(Status.FAILED, outcome.key, message))
            for child in self.graph.descendants(step.variant):
                if child.key in waiting:
                    del waiting[child.key]
                    outcomes[child.key].status = Status.BLOCKED
                    outcomes[child.key].error = f"{outcome.key} failed"
                    self.observer(
                        Event(Status.BLOCKED, child.key, f"not built: {outcome.key} failed")
                    )
            return
        outcome.status = Status.BUILT
        self.observer(
            Event(Status.BUILT, outcome.key, digest=outcome.digest, seconds=outcome.seconds)
        )

    def _produce(self, step: Step, outcomes: dict[str, Outcome], work: Path) -> str:
        """Produce one variant, pass it through the gates, push it by digest, tag it exactly."""
        started = time.monotonic()
        push = self._pushes.get(step.variant.key) or Future()
        ready = self._locals.get(step.variant.key) or Future()
        try:
            digest = self._publish(step, outcomes, work, push, started)
        except Exception as exc:
            for signal in (push, ready):
                if not signal.done():
                    signal.set_exception(exc)
            # Its parent refused after all: the child is reported blocked, as if never built.
            self._await_parent(step.variant)
            raise
        if not ready.done():
            ready.set_result({})  # not built here (or no child asked): children use the push
        outcomes[step.variant.key].seconds = time.monotonic() - started
        return digest

    def _publish(
        self,
        step: Step,
        outcomes: dict[str, Outcome],
        work: Path,
        push: Future[str],
        started: float,
    ) -> str:
        """Build, gate, push by digest, sign and tag one variant; `push` says when it is pushed."""
        from socle.gates import Subject

        variant = step.variant
        if variant.multi_platform:
            return self._publish_index(step, outcomes, work, push, started)
        target = Reference(self.catalog.registry, variant.image.repository)
        # The parent's own records go on the manifest only, once it is pushed: a child
        # builds on its parent before the parent's final digest is known.
        annotations = self.annotations(step, None)
        folder = work / variant.key.replace(":", "_").replace("/", "_")
        local = self._local_name(variant)
        upstream = variant.image.kind is Kind.UPSTREAM
        try:
            if upstream:
                digest = self._republish(variant, target)
                layout = self.fetch(target.with_digest(digest), folder / "layout")
            elif variant.image.kind is Kind.BOOTSTRAP:
                layout = self._bootstrap(variant, folder, annotations, variant.architectures[0])
            else:
                arch = variant.architectures[0] if variant.version.architectures else None
                base = self._base(variant, outcomes, arch)
                layout = self._build(variant, folder, annotations, base, arch)
            built_in = outcomes[variant.key].build_seconds = time.monotonic() - started
            self.observer(
                Event(Status.BUILDING, variant.key, f"built in {built_in:.1f} s", seconds=built_in)
            )
            subject = Subject(variant, layout, local, self._loader(layout, local), annotations)
            self._offer(variant, {None: subject})
            outcomes[variant.key].details = subject.details  # filled as the gates finish
            mount = [variant.parent.image.repository] if variant.parent else []
            with self._blobs_beside(variant, layout, target, mount, skip=upstream) as blobs:
                annotations.update(self._check(subject))
                outcomes[variant.key].notes = subject.notes
                self._await_parent(variant)  # nothing of a child is published before its parent
                annotations.update(self._parent_records(variant, outcomes, None))
                self._checkpoint(variant.key)
                if not upstream:
                    self.observer(Event(Status.PUSHING, variant.key))
                    blobs.result()  # its failure is the image's, as a push's would be
                    self._checkpoint(variant.key)
                    manifest = self.client.push_layout(
                        layout, target, annotations=annotations, mount_from=mount
                    )
                    digest = manifest.digest
            push.set_result(digest)  # its children may start building on it
            for publisher in self.publishers:
                self.observer(Event(Status.PUSHING, variant.key, publisher.name))
                publisher.publish(subject, target.with_digest(digest))
        finally:
            # Removed after the build phase, never while another build may share its layers.
            self._leftovers.append(local)
        self._checkpoint(variant.key)
        self.client.tag(target.with_digest(digest), variant.exact_tag)
        return digest

    def _publish_index(
        self,
        step: Step,
        outcomes: dict[str, Outcome],
        work: Path,
        push: Future[str],
        started: float,
    ) -> str:
        """`_publish` for a variant of several architectures: one image each, then an index.

        Every platform is produced and passes its own gates (its tests run under
        emulation) before anything is pushed, so a failed platform blocks the whole
        index: a tag never names an index with a platform missing. Each platform
        manifest records its own fingerprint and its parent's platform manifest as
        its base; the index records the variant's fingerprint and the parent's index.
        Signatures and attestations go on every platform manifest and on the index.
        """
        from socle.gates import Subject

        variant = step.variant
        key = variant.key
        target = Reference(self.catalog.registry, variant.image.repository)
        annotations = self.annotations(step, None)  # the parent's records once it is pushed
        upstream = variant.image.kind is Kind.UPSTREAM
        folder = work / key.replace(":", "_").replace("/", "_")
        subjects: dict[str, Subject] = {}
        published: dict[str, str] = {}  # arch -> platform manifest digest
        try:
            if upstream:  # every listed platform must be in the pinned index before the copy
                pin = variant.version.upstream
                if pin is not None and pin.digest is not None:
                    source = Reference.parse(f"{pin.image}@{pin.digest}")
                    published = self._platforms(source, variant.architectures, key)
                digest = self._republish(variant, target)
            for arch in variant.architectures:
                began = time.monotonic()
                local = self._local_name(variant, arch)
                own = self._platform_annotations(step, annotations, arch)
                if upstream:
                    layout = self.fetch(target.with_digest(published[arch]), folder / arch)
                elif variant.image.kind is Kind.BOOTSTRAP:
                    layout = self._bootstrap(variant, folder / arch, own, arch)
                else:
                    base = self._base(variant, outcomes, arch)
                    layout = self._build(variant, folder / arch, own, base, arch)
                loader = self._loader(layout, local)
                subjects[arch] = Subject(variant, layout, local, loader, own, arch=arch)
                took = time.monotonic() - began  # emulated platforms take longer: say each
                message = f"built for {platform_of(arch)} in {took:.1f} s"
                self.observer(Event(Status.BUILDING, key, message, seconds=took))
            built_in = outcomes[key].build_seconds = time.monotonic() - started
            self.observer(
                Event(
                    Status.BUILDING,
                    key,
                    f"built {len(subjects)} platforms in {built_in:.1f} s",
                    seconds=built_in,
                )
            )
            self._offer(variant, subjects)
            details: dict[str, object] = {}
            notes: list[str] = []
            outcomes[key].details, outcomes[key].notes = details, notes
            for arch, subject in subjects.items():
                subject.annotations.update(self._check(subject))
                details[arch] = subject.details
                notes.extend(f"{arch}: {note}" for note in subject.notes)
            self._await_parent(variant)  # nothing of a child is published before its parent
            annotations.update(self._parent_records(variant, outcomes, None))
            for arch, subject in subjects.items():
                subject.annotations.update(self._parent_records(variant, outcomes, arch))
            self._checkpoint(key)
            if not upstream:
                self.observer(Event(Status.PUSHING, key, f"{len(subjects)} platforms"))
                mount = [variant.parent.image.repository] if variant.parent else []
                for arch, subject in subjects.items():
                    self._checkpoint(key)
                    manifest = self.client.push_layout(
                        subject.layout, target, annotations=subject.annotations, mount_from=mount
                    )
                    published[arch] = manifest.digest
                for record in GATES:  # each gate's summary on the index too, platform by platform
                    if all(record in s.annotations for s in subjects.values()):
                        said = (f"{a}: {s.annotations[record]}" for a, s in subjects.items())
                        annotations[record] = "; ".join(said)
                digest = self._push_index(target, published, annotations)
            self._platform_digests[key] = dict(published)
            push.set_result(digest)  # its children may start building on it
            whole = Subject(variant, folder, "", lambda: None, annotations)
            for publisher in self.publishers:
                self.observer(Event(Status.PUSHING, key, publisher.name))
                for arch, subject in subjects.items():
                    publisher.publish(subject, target.with_digest(published[arch]))
                publisher.publish(whole, target.with_digest(digest))
            notes.extend(whole.notes)
        finally:
            # Removed after the build phase, never while another build may share its layers.
            self._leftovers.extend(
                s.local_name for s in subjects.values() if s.local_name not in self._leftovers
            )
        self._checkpoint(key)
        self.client.tag(target.with_digest(digest), variant.exact_tag)
        return digest

    def _platform_annotations(
        self, step: Step, annotations: Mapping[str, str], arch: str
    ) -> dict[str, str]:
        """What one platform manifest of an index records: its own fingerprint."""
        own = dict(annotations)
        own[FINGERPRINT] = sha256_digest(
            canonical_json({"variant": step.fingerprint, "platform": platform_of(arch)})
        )
        own.pop(BASE_DIGEST, None)  # a platform's base is its parent's platform manifest
        return own

    def _platforms(self, index: Reference, arches: Sequence[str], key: str) -> dict[str, str]:
        """The platform manifest of each of `arches` in the index at `index` (arch -> digest)."""
        manifest = self.client.get_manifest(index)
        found: dict[str, str] = {}
        if manifest.is_index:
            for child in manifest.children():
                if child.platform is None or child.platform.os != "linux":
                    continue  # attestation manifests, other systems
                arch = arch_of(child.platform.architecture, child.platform.variant)
                if arch is not None:
                    found.setdefault(arch, child.digest)
        missing = [arch for arch in arches if arch not in found]
        if missing:
            if manifest.is_index:
                lacking = ", ".join(platform_of(a) for a in missing)
                message = f"{key}: the index {index} has no {lacking} image"
            else:
                wanted = ", ".join(platform_of(a) for a in arches)
                message = f"{key}: {index} is one image, not an index of {wanted}"
            raise SocleError(
                message,
                hint="build the parent for every architecture its children list, "
                "or pin an upstream index that has them",
            )
        return {arch: found[arch] for arch in arches}

    def _base_for(self, variant: Variant, parent_digest: str, arch: str | None) -> str:
        """The parent image a build of `arch` starts FROM: its platform manifest in an index.

        Building on the index itself would let a builder reuse another platform's
        image it pulled before under the same digest.
        """
        parent = variant.parent
        if arch is None or parent is None or not parent.multi_platform:
            return parent_digest
        ref = Reference(self.catalog.registry, parent.image.repository, digest=parent_digest)
        return self._platforms(ref, [arch], variant.key)[arch]

    def _push_index(
        self, target: Reference, platforms: Mapping[str, str], annotations: Mapping[str, str]
    ) -> str:
        """Put the OCI image index of `platforms` (arch -> pushed manifest) by digest."""
        entries = []
        for arch, digest in platforms.items():
            head = self.client.head_manifest(target.with_digest(digest))
            assert head is not None, f"{digest} was just pushed"
            entries.append(
                {
                    "mediaType": head.media_type,
                    "digest": digest,
                    "size": head.size,
                    "platform": platform_json(arch),
                }
            )
        index = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": entries,
            "annotations": dict(sorted(annotations.items())),
        }
        data = canonical_json(index)
        digest = sha256_digest(data)
        self.client.put_manifest(target.with_digest(digest), data, OCI_INDEX)
        return digest

    @contextmanager
    def _blobs_beside(
        self,
        variant: Variant,
        layout: Path,
        target: Reference,
        mount_from: Sequence[str],
        *,
        skip: bool,
    ) -> Iterator[Future[None]]:
        """Upload the image's layers and config while the block (its gates) runs.

        Only the manifest carries the gates' annotations, so the blobs are final once
        built; the push by digest then finds them and only PUTs the manifest. Blobs are
        mounted from `mount_from` (the parent's repository) when it has them, as the
        push would. A refused image (or an interrupted run) leaves the blobs uploaded so
        far unreferenced: no manifest, no tag, and the registry's garbage collection
        removes them. The upload stops between blobs once the block ends or the run
        is interrupted, and is always over when this returns (the layout is removed
        after the run).
        """
        uploaded: Future[None] = Future()
        self._uploads[variant.key] = uploaded
        if skip:
            uploaded.set_result(None)
            yield uploaded
            return
        ended = threading.Event()
        thread = threading.Thread(
            target=self._upload_blobs,
            args=(variant, layout, target, mount_from, ended, uploaded),
            name=f"socle-blobs-{target.repository}",
            daemon=True,
        )
        thread.start()
        try:
            yield uploaded
        finally:
            ended.set()
            thread.join()

    def _upload_blobs(
        self,
        variant: Variant,
        layout: Path,
        target: Reference,
        mount_from: Sequence[str],
        ended: threading.Event,
        uploaded: Future[None],
    ) -> None:
        """`_blobs_beside`'s thread: each blob in turn, unless the image's block has ended.

        A child built on its local parent first waits for the parent's own upload, so
        the layers they share are mounted from the parent, not sent twice.
        """
        from socle.oci.layout import read_image_layout

        key = variant.key
        parents = self._uploads.get(variant.parent.key) if variant.parent is not None else None
        try:
            while parents is not None and not parents.done() and not ended.is_set():
                wait([parents], timeout=0.1)
            image = read_image_layout(layout)
            for blob in image.manifest.blobs():
                if ended.is_set():
                    break  # refused or failed: what the block raised is what is reported
                self._checkpoint(key)  # interrupted: no more uploads
                self.client.ensure_blob(
                    target, blob.digest, image.blob_path(blob.digest), mount_from=mount_from
                )
        except BaseException as exc:  # raised where the image is pushed
            uploaded.set_exception(exc)
        else:
            uploaded.set_result(None)

    def _await_parent(self, variant: Variant) -> None:
        """Wait until this run's parent of `variant` is accepted; raise if it was refused."""
        parent = variant.parent
        run = self._runs.get(parent.key) if parent is not None else None
        if parent is None or run is None:
            return
        try:
            run.result()
        except BaseException as exc:  # its own failure is reported where it happened
            raise _ParentFailed(parent.key) from exc

    def _check(self, subject: Subject) -> dict[str, str]:
        """Run the gates, independent ones at the same time; their records in declared order.

        A gate starts once the gates it needs (`needs`, by name; every earlier gate
        when it does not say) have passed, so the image tests run beside the SBOM
        and the scan starts as soon as the inventory is there. Each gate works on
        its own view of the subject; notes, details and annotations are merged in
        the declared order, and the failure reported is that of the first failed
        gate in that order, so what is published and said never depends on which
        gate finished first.
        """
        if not self.gates:
            return {}
        views = [replace(subject, notes=[], details={}) for _ in self.gates]
        running: list[Future[dict[str, str]]] = []
        with ThreadPoolExecutor(max_workers=len(self.gates)) as pool:
            for index, gate in enumerate(self.gates):
                needs = [views[i] for i in gate_needs(gate, self.gates[:index])]
                waited = [running[i] for i in gate_needs(gate, self.gates[:index])]
                running.append(pool.submit(self._gate, gate, views[index], needs, waited))
        found: dict[str, str] = {}
        for view, future in zip(views, running, strict=True):
            subject.notes.extend(view.notes)
            subject.details.update(view.details)
            _take_shared(subject, view)
            found.update(future.result())  # the first failure in declared order is raised
        return found

    def _gate(
        self,
        gate: Gate,
        view: Subject,
        needs: Sequence[Subject],
        waited: Sequence[Future[dict[str, str]]],
    ) -> dict[str, str]:
        """One gate once those it needs have passed, with what they found in its view."""
        if any(future.exception() is not None for future in waited):
            raise _Skipped  # an earlier gate failed: that failure is the one reported
        for done in needs:
            _take_shared(view, done)
        self.observer(Event(Status.TESTING, view.variant.key, gate.name))
        return gate.check(view)

    def _checkpoint(self, key: str) -> None:
        """Stop here when the run was interrupted: nothing more is pushed or tagged."""
        if self._stopping.is_set():
            raise SocleError(f"{key}: stopped, the run was interrupted")

    def _loader(self, layout: Path, name: str) -> Callable[[], None]:
        """Loads the layout into the builder once, when a gate or a child first needs it.

        A built image is loaded too: its tests run on what is published (normalised),
        not on the builder's own image.
        """
        loaded = [False]
        lock = threading.Lock()  # gates run side by side

        def load() -> None:
            with lock:
                if not loaded[0]:
                    self.builder.load(layout, name)
                    loaded[0] = True

        return load

    def _parent_digest(self, variant: Variant, outcomes: Mapping[str, Outcome]) -> str | None:
        if variant.parent is None:
            return None
        push = self._pushes.get(variant.parent.key)
        if push is not None and push.done() and push.exception() is None:
            return push.result()  # pushed in this run, being signed and tagged now
        if push is not None:
            raise SocleError(f"parent {variant.parent.key} of {variant.key} is not pushed yet")
        digest = outcomes[variant.parent.key].digest
        if digest is None:
            raise SocleError(f"parent {variant.parent.key} of {variant.key} is not published")
        return digest

    def _fetch_published(self, ref: Reference, layout: Path) -> Path:
        """The published image `ref` as a layout, for the gates (an upstream copy's)."""
        from socle.localimage import fetch_layout

        return fetch_layout(self.client, ref, layout)

    def _republish(self, variant: Variant, target: Reference) -> str:
        upstream = variant.version.upstream
        assert upstream is not None
        if upstream.digest is None:
            raise InputError(
                f"upstream {upstream} of {variant.key} is not pinned to a digest",
                hint="add `digest: sha256:...` to the version, or run `socle pins update`",
            )
        source = Reference.parse(f"{upstream.image}@{upstream.digest}")
        self.observer(
            Event(Status.PUSHING, variant.key, f"copying {upstream}@{upstream.digest[:19]}")
        )
        return self.client.copy(source, target.with_digest(upstream.digest)).digest

    def _bootstrap(
        self, variant: Variant, folder: Path, labels: Mapping[str, str], arch: str
    ) -> Path:
        # mmdebstrap's driver is for the images a run bootstraps: a no-op never imports it.
        from socle.bootstrap.mmdebstrap import bootstrap
        from socle.bootstrap.spec import BootstrapSpec

        spec = variant.version.bootstrap
        assert spec is not None
        result = bootstrap(
            BootstrapSpec(
                suite=spec.suite,
                packages=spec.packages,
                variant=spec.variant,
                components=spec.components,
                architecture=arch,
                mirror=spec.mirror,
                security=spec.security,
                source_date_epoch=self.epoch,
            ),
            folder / "layout",
            work_dir=folder,
            labels=labels,
        )
        return result.layout

    def _base(self, variant: Variant, outcomes: Mapping[str, Outcome], arch: str | None) -> _Base:
        """What the build of `variant` (for `arch`) starts FROM.

        This run's local image of the parent when there is one (its blobs read from its
        layout on disk), loaded into the builder's storage here, as a build on the
        published parent pulls it: the load is part of the child's build time. Else
        the published parent by digest.
        """
        parent = variant.parent
        assert parent is not None
        repository = Reference(self.catalog.registry, parent.image.repository)
        local = self._local_base(variant, arch)
        if local is not None:
            from socle.localimage import LayoutSource

            local.load()
            return _Base(local.name, LayoutSource(local.layout), repository)
        digest = self._parent_digest(variant, outcomes)
        assert digest is not None
        digest = self._base_for(variant, digest, arch)
        return _Base(f"{repository}@{digest}", self.client, repository.with_digest(digest))

    def _parent_records(
        self, variant: Variant, outcomes: Mapping[str, Outcome], arch: str | None
    ) -> dict[str, str]:
        """The parent's name and pushed digest, for the manifest (of `arch`'s platform).

        Called once the parent is accepted: its digest is final. A platform manifest
        of an index records its parent's platform manifest.
        """
        parent = variant.parent
        if parent is None:
            return {}
        digest = self._parent_digest(variant, outcomes)
        assert digest is not None
        if arch is not None and parent.multi_platform:
            pushed = self._platform_digests.get(parent.key)
            digest = (
                pushed[arch] if pushed and arch in pushed else self._base_for(variant, digest, arch)
            )
        return {BASE_NAME: parent.ref(self.catalog.registry), BASE_DIGEST: digest}

    def _offer(
        self, variant: Variant, subjects: Mapping[str, Subject] | Mapping[None, Subject]
    ) -> None:
        """Offer `variant`'s final image to the children this run builds on it.

        They may start building at once, while its gates, push and signing go on;
        the first child (or gate) that needs it in the builder's storage loads it.
        """
        ready = self._locals.get(variant.key)
        if ready is None or ready.done():
            return
        found: dict[str | None, LocalImage] = {}
        if self._has_children(variant):
            for arch, subject in subjects.items():
                found[arch] = LocalImage(subject.local_name, subject.layout, subject.load)
        ready.set_result(found)

    def _build(
        self,
        variant: Variant,
        folder: Path,
        labels: Mapping[str, str],
        base: _Base,
        arch: str | None = None,
    ) -> Path:
        """Build on `base` (for `arch`'s platform when one is given); returns the layout.

        The builder's own image (before normalisation) has a name of its own: the
        final image is loaded from the layout when a gate or a child first needs it.
        The parent's records are not labels: a child built on a local parent would
        otherwise depend on the parent's final digest, which its gates decide.
        """
        assert variant.parent is not None and variant.version.context and variant.version.dockerfile
        raw = self._local_name(variant, arch, final=False)
        self._leftovers.append(raw)
        request = BuildRequest(
            context=variant.version.context,
            dockerfile=variant.version.dockerfile,
            build_args={**dict(variant.version.build_args), "BASE_IMAGE": base.image},
            labels={k: v for k, v in labels.items() if k not in (BASE_NAME, BASE_DIGEST)},
            name=raw,
            output=folder / "layout",
            insecure_registries=insecure(self.catalog.registry),
            platform=platform_of(arch) if arch is not None else None,
            source_date_epoch=self.epoch,
            base_recorded_as=variant.parent.ref(self.catalog.registry),
        )
        layout = self.builder.build(request).layout
        from socle.localimage import restore_parent_blobs

        restore_parent_blobs(base.source, base.ref, layout)
        return layout

    def annotations(self, step: Step, parent_digest: str | None) -> dict[str, str]:
        """What socle records on every image it publishes (manifest annotations and labels)."""
        variant = step.variant
        found = {
            FINGERPRINT: step.fingerprint,
            INPUTS: canonical_json(dict(step.inputs)).decode(),
            CREATED: rfc3339(self.epoch),
            VERSION: variant.version.name,
            REF_NAME: variant.exact_tag,
        }
        if self.revision.source:
            found[SOURCE] = self.revision.source
        if self.revision.commit:
            found[REVISION] = self.revision.commit
        if variant.parent is not None and parent_digest is not None:
            found[BASE_NAME] = variant.parent.ref(self.catalog.registry)
            found[BASE_DIGEST] = parent_digest
        return found

    # -- tags -------------------------------------------------------------------------

    def promote(self, plan: Plan) -> list[str]:
        """Move floating tags only, for families whose every variant is current: no build.

        What `socle promote` runs after a CI engine built each variant in its own job.
        A variant the plan would build (missing, stale, on a rebuilt parent) blocks its
        whole family; returns one line per blocked family naming why.
        """
        self.complete_interrupted(plan)
        outcomes: dict[str, Outcome] = {}
        blocking: dict[str, list[str]] = {}
        for step in plan.steps:
            key = step.variant.key
            if step.action is Action.SKIP and step.published is not None:
                outcomes[key] = Outcome(step, Status.SKIPPED, step.published.digest)
                continue
            why = "; ".join(r.text for r in step.reasons) or "not published"
            outcomes[key] = Outcome(step, Status.BLOCKED, error=why)
            blocking.setdefault(step.variant.image.name, []).append(f"{key} ({why})")
        self._move_tags(plan, outcomes)
        return [
            f"{image}: not promoted, {len(keys)} variant(s) not current: {', '.join(keys[:5])}"
            + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
            for image, keys in blocking.items()
        ]

    def _move_tags(self, plan: Plan, outcomes: dict[str, Outcome]) -> None:
        """Point every tag of every healthy variant at its digest (exact tags are already set).

        All or nothing per family: when any variant of an image failed, was
        blocked, or still waits to be rebuilt (left out by `--only`), none of that
        image's floating tags move, so `17`, `latest` and `17-debian12` never
        disagree about which build is current.
        The moves are recorded in each family's journal before the first PUT,
        then made one family at a time, and each family's record is marked done.
        """
        broken = {o.step.variant.image.name for o in outcomes.values() if o.status in _HOLDS_FAMILY}
        moving = [
            outcomes[s.variant.key]
            for s in plan.steps
            if outcomes[s.variant.key].digest is not None
            and s.variant.image.name not in broken
            and self._healthy(s.variant, outcomes)
        ]
        wanted = [
            (o, Reference(self.catalog.registry, o.step.variant.image.repository, tag=tag))
            for o in moving
            for tag in o.step.variant.tags
        ]
        # One batch of HEADs for every tag, then a PUT of the same bytes where one is stale.
        # Tags this run already read (the plan) or set (exact tags) are not asked again.
        current = self.client.head_manifests([ref for _, ref in wanted], recent=True)
        families: dict[str, list[Move]] = {}
        for (outcome, ref), found in zip(wanted, current, strict=True):
            assert outcome.digest is not None and ref.tag is not None
            if found is None or found.digest != outcome.digest:
                move = Move(ref.tag, outcome.digest, outcome.key)
                families.setdefault(ref.repository, []).append(move)
        if not families:
            return
        count = sum(len(m) for m in families.values())
        self.observer(
            Event(Status.TAGGING, None, f"moving {count} tag(s) in {len(families)} family(ies)")
        )
        for repository, moves in families.items():
            self.journal.write(repository, moves)
        for repository, moves in families.items():
            for key, tags in self._apply(repository, moves).items():
                outcomes[key].tags_moved.extend(tags)

    def _apply(self, repository: str, moves: list[Move]) -> dict[str, list[str]]:
        """Make one family's recorded moves, then mark its record done; tags moved by key."""
        moved: dict[str, list[str]] = {}
        for move in moves:
            if moved and move.key not in moved:
                self._tagged(moved, moves)
            target = Reference(self.catalog.registry, repository, digest=move.digest)
            self.client.tag(target, move.tag)
            moved.setdefault(move.key, []).append(move.tag)
        self._tagged(moved, moves)
        self.journal.write(repository, moves, done=True)
        return moved

    def _tagged(self, moved: dict[str, list[str]], moves: list[Move]) -> None:
        """One TAGGED event per variant, as soon as its tags have moved."""
        key = next(reversed(moved))
        digest = next(m.digest for m in moves if m.key == key)
        self.observer(Event(Status.TAGGED, key, " ".join(moved[key]), digest))

    def complete_interrupted(self, plan: Plan) -> list[str]:
        """Finish the moves an interrupted run recorded for this plan's families.

        Returns the repositories repaired. The digests recorded there passed
        their gates in that run, so moving to them is what it would have done.
        """
        repositories = {s.variant.image.repository for s in plan.steps}
        repaired = []
        for record in self.journal.pending(repositories):
            self.observer(Event(Status.TAGGING, None, record.describe() + "; completing it"))
            refs = [
                Reference(self.catalog.registry, record.repository, tag=m.tag) for m in record.moves
            ]
            current = self.client.head_manifests(refs)
            left = [
                m
                for m, found in zip(record.moves, current, strict=True)
                if found is None or found.digest != m.digest
            ]
            if left:
                self._apply(record.repository, left)
            else:
                self.journal.write(record.repository, record.moves, done=True)
            repaired.append(record.repository)
        return repaired

    def _healthy(self, variant: Variant, outcomes: Mapping[str, Outcome]) -> bool:
        chain = [variant, *self.graph.ancestors(variant)]
        return not any(outcomes[v.key].status in _HOLDS_FAMILY for v in chain)


# What the built-in gates need from each other, by name: the scan reads the SBOM's inventory.
# A gate not named here waits for every gate declared before it (unless it says `needs`).
GATE_NEEDS: dict[str, tuple[str, ...]] = {"tests": (), "sbom": (), "scan": ("sbom",)}

# What one gate leaves on the subject for the gates after it and for the publishers.
_SHARED = ("inventory", "sbom")


class _ParentFailed(Exception):
    """A child built beside its parent, which its gates or publishers then refused."""

    def __init__(self, parent: str) -> None:
        super().__init__(f"{parent} failed")
        self.parent = parent


class _Skipped(Exception):
    """A gate not run because one it needs failed (that failure is the one reported)."""


def gate_needs(gate: Gate, before: Sequence[Gate]) -> list[int]:
    """The positions of the gates `gate` waits for, among those declared `before` it."""
    declared = getattr(gate, "needs", None)
    if declared is None:
        declared = GATE_NEEDS.get(gate.name)
    return [i for i, g in enumerate(before) if declared is None or g.name in declared]


def _take_shared(subject: Subject, source: Subject) -> None:
    for name in _SHARED:
        if getattr(source, name) is not None:
            setattr(subject, name, getattr(source, name))


# A variant in one of these states keeps its family's floating tags where they are.
_HOLDS_FAMILY = (Status.FAILED, Status.BLOCKED, Status.QUEUED)


def insecure(registry: str) -> tuple[str, ...]:
    """Registries reached over plain http: the loopback ones."""
    host = registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry
    return (registry,) if host in ("localhost", "::1") or host.startswith("127.") else ()


def _build_arches(variant: Variant) -> list[str | None]:
    """The architectures `variant` is built for (None: the builder's own, one image)."""
    if variant.multi_platform:
        return list(variant.architectures)
    return [variant.architectures[0] if variant.version.architectures else None]
