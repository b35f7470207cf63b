"""Console routes: overview, lineage, image, runs, a live run (SSE), health.

Every page reads the history database: the overview's rows are what the last
refresh (serve/snapshot.py) found in the registry. Only an image page's
signature layouts, provenance and SBOM go to the registry, once per digest.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

import socle
from socle.core.policy import Policy
from socle.history.store import EventView, HistoryStore, OutcomeView, RunView, StateView
from socle.oci.reference import Reference
from socle.recording import mark_dead_runs
from socle.serve import lineage, snapshot
from socle.serve.console import Console

PAGE_SIZE = 25
POLL_SECONDS = 0.3
KEEPALIVE_SECONDS = 15.0
CYCLONEDX = "https://cyclonedx.org/bom"


def page_context(request: Request, console: Console, **extra: Any) -> dict[str, Any]:
    """What base.html needs (user, csrf, version, catalog, read_only), plus `extra`.

    `read_only`: the console has no login (no --oidc-issuer), so pages offer none.
    """
    from socle.serve.auth import csrf_token, current_user

    user = current_user(request)
    csrf = csrf_token(request) if user is not None else ""
    return {
        "request": request,
        "user": user,
        "csrf": csrf,
        "read_only": console.settings.oidc is None,
        "version": socle.__version__,
        "catalog": str(console.settings.catalog),
        **extra,
    }


def routes(console: Console) -> list[BaseRoute]:
    pages = Pages(console)
    env = console.templates.env
    env.filters["image_href"] = lineage.image_href
    env.filters["short"] = short_digest
    env.filters["age"] = age
    env.filters["when"] = when
    env.filters["seconds"] = seconds
    return [
        Route("/", pages.overview, name="overview"),
        Route("/healthz", pages.healthz, name="healthz"),
        Route("/lineage", pages.lineage_page, name="lineage"),
        Route("/lineage.svg", pages.lineage_svg, name="lineage_svg"),
        Route("/images/{key:path}/sbom", pages.sbom, name="sbom"),
        Route("/images/{key:path}", pages.image, name="image"),
        Route("/runs", pages.runs, name="runs"),
        Route("/runs/{run_id:int}", pages.run, name="run"),
        Route("/runs/{run_id:int}/events", pages.events, name="run_events"),
    ]


# -- filters ---------------------------------------------------------------------------------


def short_digest(digest: str | None) -> str:
    if not digest:
        return "—"
    algorithm, _, value = digest.partition(":")
    return f"{algorithm}:{value[:12]}" if value else digest[:19]


def age(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return "—"
    delta = ((now or datetime.now(UTC)) - moment).total_seconds()
    if delta < 0:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if delta >= size:
            return f"{int(delta // size)} {unit}"
    return f"{int(delta)} s"


def when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "—"


def seconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


# -- the image page's gates ------------------------------------------------------------------


@dataclass(frozen=True)
class Gates:
    """What the newest built outcome of a variant recorded, for its image page."""

    outcome: OutcomeView | None
    tests: list[Mapping[str, Any]]
    packages: int | None
    scan: Mapping[str, Any] | None
    severities: list[tuple[str, int]]
    allowlisted: list[Mapping[str, Any]]
    blocking: list[str]


SEVERITY_ORDER = ("critical", "high", "medium", "low", "unknown", "negligible")


def gates_of(history: list[OutcomeView], digest: str | None) -> Gates:
    built = [o for o in history if o.status == "built" and o.digest]
    outcome = next((o for o in built if o.digest == digest), built[0] if built else None)
    details: Mapping[str, Any] = outcome.details if outcome else {}
    tests = details.get("tests")
    packages = details.get("packages")
    scan = details.get("scan") if isinstance(details.get("scan"), Mapping) else None
    counts = snapshot.severities_of(scan)
    ordered = sorted(
        counts.items(),
        key=lambda kv: SEVERITY_ORDER.index(kv[0]) if kv[0] in SEVERITY_ORDER else 99,
    )
    return Gates(
        outcome=outcome,
        tests=[t for t in tests if isinstance(t, Mapping)] if isinstance(tests, list) else [],
        packages=packages if isinstance(packages, int) else None,
        scan=scan,
        severities=ordered,
        allowlisted=[a for a in (scan or {}).get("allowlisted", []) if isinstance(a, Mapping)],
        blocking=[str(c) for c in (scan or {}).get("blocking", [])],
    )


def allowlist_rows(policy: Policy | None, today: date) -> list[dict[str, Any]]:
    if policy is None:
        return []
    return [
        {
            "cve": e.cve,
            "reason": e.reason,
            "owner": e.owner,
            "expires": e.expires.isoformat(),
            "expired": not e.valid_on(today),
        }
        for e in policy.allowlist
    ]


def provenance_summary(statement: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The SLSA v1 predicate's essentials: builder, build type, parameters, inputs, times."""
    if not statement:
        return None
    predicate = statement.get("predicate")
    if not isinstance(predicate, Mapping):
        return None
    definition = predicate.get("buildDefinition") or {}
    details = predicate.get("runDetails") or {}
    metadata = details.get("metadata") or {}
    dependencies = definition.get("resolvedDependencies") or []
    return {
        "predicate_type": statement.get("predicateType"),
        "build_type": definition.get("buildType"),
        "builder": (details.get("builder") or {}).get("id"),
        "invocation": metadata.get("invocationId"),
        "started": metadata.get("startedOn"),
        "finished": metadata.get("finishedOn"),
        "parameters": json.dumps(definition.get("externalParameters") or {}, sort_keys=True),
        "dependencies": [
            {"uri": d.get("uri") or d.get("name") or "?", "digest": d.get("digest") or {}}
            for d in dependencies
            if isinstance(d, Mapping)
        ],
    }


@dataclass(frozen=True)
class CatalogFacts:
    registry: str
    policy: Policy | None


class _CatalogCache:
    """The catalog's registry and policy, re-read when the catalog file changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: tuple[int, CatalogFacts] | None = None

    def get(self, console: Console) -> CatalogFacts:
        fallback = CatalogFacts(console.settings.registry or "", None)
        try:
            stamp = os.stat(console.settings.catalog).st_mtime_ns
        except OSError:
            return fallback
        with self._lock:
            if self._seen is not None and self._seen[0] == stamp:
                return self._seen[1]
        from socle.errors import SocleError

        try:
            catalog, _graph = console.load()
        except SocleError:
            return fallback
        facts = CatalogFacts(catalog.registry, catalog.policy)
        with self._lock:
            self._seen = (stamp, facts)
        return facts


# -- routes ----------------------------------------------------------------------------------


class Pages:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.store: HistoryStore = console.store
        self.catalog = _CatalogCache()

    def render(self, request: Request, name: str, status_code: int = 200, **extra: Any) -> Response:
        return self.console.templates.TemplateResponse(
            request, name, page_context(request, self.console, **extra), status_code=status_code
        )

    def not_found(self, request: Request, message: str) -> Response:
        return self.render(request, "not_found.html", status_code=404, message=message)

    def healthz(self, _request: Request) -> Response:
        return PlainTextResponse("ok")

    def overview(self, request: Request) -> Response:
        every = self.store.states(self.console.catalog_key)
        status = request.query_params.get("status", "").strip()[:32]
        image = request.query_params.get("image", "").strip()[:255]
        named = [s for s in every if image.lower() in s.image.lower()] if image else every
        counts: dict[str, int] = {}
        for s in named:
            counts[s.status] = counts.get(s.status, 0) + 1
        shown = [s for s in named if s.status == status] if status else named
        refreshed = min((s.refreshed_at for s in every if s.refreshed_at), default=None)
        return self.render(
            request,
            "overview.html",
            states=shown,
            total=len(every),
            counts=[(name, counts.get(name, 0)) for name in snapshot.STATUSES],
            status=status,
            image=image,
            statuses=snapshot.STATUSES,
            refreshed=refreshed,
            now=datetime.now(UTC),
        )

    def lineage_page(self, request: Request) -> Response:
        states = self.store.states(self.console.catalog_key)
        return self.render(
            request,
            "lineage.html",
            svg=lineage.render(states),
            count=len(states),
            statuses=snapshot.STATUSES,
        )

    def lineage_svg(self, _request: Request) -> Response:
        states = self.store.states(self.console.catalog_key)
        return Response(lineage.render(states), media_type="image/svg+xml")

    def _state(self, key: str) -> StateView | None:
        return self.store.state(self.console.catalog_key, key)

    def image(self, request: Request) -> Response:
        key = request.path_params["key"]
        state = self._state(key)
        if state is None:
            return self.not_found(request, f"no image {key} in the catalog's overview")
        history = self.store.outcomes_of(key)
        gates = gates_of(history, state.digest)
        today = datetime.now(UTC).date()
        layouts, provenance, sboms, registry_error = self._signed(state)
        children = [s for s in self.store.states(self.console.catalog_key) if s.parent == state.key]
        return self.render(
            request,
            "image.html",
            state=state,
            gates=gates,
            allowlist=allowlist_rows(self.catalog.get(self.console).policy, today),
            layouts=layouts,
            provenance=provenance,
            sbom_available=any(available for _, available in sboms),
            sboms=[(platform, available) for platform, available in sboms if platform],
            registry_error=registry_error,
            records=snapshot.socle_records(state.annotations),
            history=history,
            children=children,
            verify_key=self.console.verify_key is not None,
        )

    def _signed(
        self, state: StateView
    ) -> tuple[
        list[dict[str, str]], dict[str, Any] | None, list[tuple[str | None, bool]], str | None
    ]:
        """Signature layouts, provenance summary, and whether each SBOM is there (per platform
        for an index; from the registry, cached by digest)."""
        key = self.console.verify_key
        if key is None or state.digest is None:
            return [], None, [], None
        from socle.errors import SocleError
        from socle.registry.client import RegistryClient
        from socle.signing.dsse import SLSA_PROVENANCE_V1

        ref = _reference(self.catalog.get(self.console).registry, state).with_digest(state.digest)
        try:
            with RegistryClient.from_config() as client:
                result = snapshot.verification(client, ref, key)
                statement = snapshot.attestation(client, ref, key, SLSA_PROVENANCE_V1)
                sboms = [
                    (platform, snapshot.attestation(client, subject, key, CYCLONEDX) is not None)
                    for platform, subject in snapshot.sbom_subjects(client, ref)
                ]
        except SocleError as exc:
            return [], None, [], exc.message
        layouts = (
            [
                {
                    "layout": r.layout,
                    "location": r.location,
                    "status": r.status.value,
                    "text": r.describe(),
                }
                for r in result.layouts
            ]
            if result is not None
            else []
        )
        return layouts, provenance_summary(statement), sboms, None

    def sbom(self, request: Request) -> Response:
        key = request.path_params["key"]
        state = self._state(key)
        if state is None:
            return PlainTextResponse(f"no image {key} in the catalog's overview\n", 404)
        if state.digest is None:
            return PlainTextResponse(f"{key} is not published: it has no SBOM\n", 404)
        public_key = self.console.verify_key
        if public_key is None:
            return PlainTextResponse(
                f"no SBOM for {key}: the console has no verify key (--key) to check "
                "the signed SBOM attestation with\n",
                404,
            )
        from socle.errors import SocleError
        from socle.registry.client import RegistryClient

        ref = _reference(self.catalog.get(self.console).registry, state).with_digest(state.digest)
        wanted = request.query_params.get("platform")
        try:
            with RegistryClient.from_config() as client:
                subjects = snapshot.sbom_subjects(client, ref)
                # A single-platform image has one SBOM, whichever platform is asked for.
                chosen = [s for s in subjects if wanted is None or s[0] in (wanted, None)][:1]
                if not chosen:
                    found = ", ".join(str(p) for p, _ in subjects if p) or "one platform"
                    return PlainTextResponse(f"{key} has no {wanted} image (it has {found})\n", 404)
                platform, subject = chosen[0]
                statement = snapshot.attestation(client, subject, public_key, CYCLONEDX)
        except SocleError as exc:
            return PlainTextResponse(f"the registry failed: {exc.message}\n", 502)
        if statement is None or not isinstance(statement.get("predicate"), Mapping):
            return PlainTextResponse(
                f"no verified CycloneDX SBOM attestation for {key} ({subject.digest})\n", 404
            )
        name = key.replace(":", "_").replace("/", "_")
        if platform is not None:
            name += "_" + platform.replace("/", "-")
        return Response(
            json.dumps(statement["predicate"], indent=2),
            media_type="application/vnd.cyclonedx+json",
            headers={"content-disposition": f'attachment; filename="{name}.cdx.json"'},
        )

    def runs(self, request: Request) -> Response:
        try:
            page = max(1, int(request.query_params.get("page", "1")))
        except ValueError:
            page = 1
        total = self.store.count_runs()
        listed = self.store.runs(limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
        full = [self.store.run(r.id) or r for r in listed]
        return self.render(
            request,
            "runs.html",
            runs=full,
            page=page,
            pages=max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE),
            total=total,
        )

    def run(self, request: Request) -> Response:
        run_id = int(request.path_params["run_id"])
        found = self.store.run(run_id)
        if found is None:
            return self.not_found(request, f"no run {run_id} in the history")
        tail = self.store.log_tail(run_id)
        return self.render(
            request,
            "run.html",
            run=found,
            tail=tail,
            last_event=tail[-1].id if tail else 0,
            live=found.finished_at is None,
        )

    async def events(self, request: Request) -> Response:
        run_id = int(request.path_params["run_id"])
        found = await run_in_threadpool(self.store.run, run_id)
        if found is None:
            raise HTTPException(404, f"no run {run_id} in the history")
        after = _after(request)
        return StreamingResponse(
            self._stream(run_id, after),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )

    async def _stream(self, run_id: int, after: int) -> AsyncIterator[str]:
        last = after
        quiet = 0.0
        yield "retry: 2000\n\n"
        while True:
            run = await run_in_threadpool(self.store.run, run_id)
            events = await run_in_threadpool(self.store.events, run_id, after=last)
            for event in events:
                last = event.id
                yield sse(event)
            if events:
                quiet = 0.0
                continue  # drain before checking the end again
            if run is None or run.finished_at is not None:
                yield end_event(run)
                return
            await asyncio.sleep(POLL_SECONDS)
            quiet += POLL_SECONDS
            if quiet >= KEEPALIVE_SECONDS:
                quiet = 0.0
                # a run whose process died never ends by itself: close it, then the stream
                await run_in_threadpool(mark_dead_runs, self.store)
                yield ": keep-alive\n\n"


def sse(event: EventView) -> str:
    data = {
        "id": event.id,
        "at": event.at.isoformat(),
        "status": event.status,
        "key": event.key,
        "message": event.message,
        "digest": event.digest,
        "seconds": event.seconds,
        "line": event.line(),
    }
    return f"id: {event.id}\nevent: progress\ndata: {json.dumps(data)}\n\n"


def end_event(run: RunView | None) -> str:
    data = (
        {"status": run.status, "summary": run.summary, "seconds": run.seconds}
        if run is not None
        else {"status": "gone", "summary": "the run is no longer in the history"}
    )
    return f"event: end\ndata: {json.dumps(data)}\n\n"


def _after(request: Request) -> int:
    for value in (request.headers.get("last-event-id"), request.query_params.get("after")):
        if value and value.isdigit():
            return int(value)
    return 0


def _reference(registry: str, state: StateView) -> Reference:
    return Reference.parse(f"{registry}/{state.repository}:{state.tags[0]}")
