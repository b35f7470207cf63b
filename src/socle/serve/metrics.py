"""`/metrics`: the catalog's images and the recorded builds, for Prometheus.

A custom collector reads the history store at each scrape (the overview's
rows, the recorded outcomes, the last run) and the runner's queue, so the
numbers are the history's, whichever process recorded them. Each app has its
own registry: nothing lands in prometheus-client's global one.

Labels are bounded: `variant` by the catalog, `severity` by the scanners'
scale, `result` by the outcome statuses. Digests only appear in the
`socle_image_info` metric, whose value is always 1.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime

from prometheus_client import generate_latest
from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from socle.errors import SocleError
from socle.history.store import HistoryStore, StateView
from socle.serve.console import Console

log = logging.getLogger(__name__)

# Builds take seconds to half an hour: finer at the short end, where cache hits land.
# The classic text format: every Prometheus server (Debian's 2.x too) reads it.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

BUILD_BUCKETS: tuple[float, ...] = (1, 5, 10, 30, 60, 120, 300, 600, 900, 1200, 1800)


class HistoryCollector(Collector):
    """Every `socle_` metric, read from the history (and the runner) when scraped."""

    def __init__(
        self,
        store: HistoryStore,
        catalog_key: Callable[[], str],
        queued: Callable[[], int],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._catalog_key = catalog_key
        self._queued = queued
        self._clock = clock

    def describe(self) -> list[Metric]:
        # Describing by collecting would read the database at registration; nothing is needed.
        return []

    def collect(self) -> Iterator[Metric]:
        states = self._store.states(self._catalog_key())
        yield from image_metrics(states, now=self._clock())
        yield build_duration(self._store.durations())
        builds = CounterMetricFamily(
            "socle_builds",
            "Recorded image outcomes by result (built, failed, skipped, blocked).",
            labels=["result"],
        )
        for result, count in sorted(self._store.outcome_counts().items()):
            builds.add_metric([result], count)
        yield builds
        last = self._store.last_finished()
        last_run = GaugeMetricFamily(
            "socle_last_run_timestamp_seconds",
            "When the newest recorded run finished (Unix time).",
        )
        if last is not None and last.finished_at is not None:
            last_run.add_metric([], _timestamp(last.finished_at))
        yield last_run
        yield GaugeMetricFamily(
            "socle_runs_queued", "Console runs waiting for the runner.", value=self._queued()
        )


def image_metrics(states: Sequence[StateView], *, now: float) -> Iterator[Metric]:
    """The per-variant gauges of the overview's rows."""
    age = GaugeMetricFamily(
        "socle_image_age_seconds",
        "Seconds since the published image was created.",
        labels=["image", "variant"],
    )
    vulnerabilities = GaugeMetricFamily(
        "socle_image_vulnerabilities",
        "Known vulnerabilities in the published image, by severity.",
        labels=["variant", "severity"],
    )
    info = InfoMetricFamily(
        "socle_image",
        "The published image's digest and the digest of the base it was built on.",
        labels=["variant"],
    )
    stale = GaugeMetricFamily(
        "socle_image_stale",
        "1 when the plan would rebuild the image now (its base or its sources moved, "
        "it is too old or not published), whatever its status.",
        labels=["variant"],
    )
    signed = GaugeMetricFamily(
        "socle_image_signed",
        "1 when the published image carries a valid signature, 0 when it does not.",
        labels=["variant"],
    )
    for state in states:
        if state.created is not None:
            age.add_metric([state.image, state.key], max(0.0, now - _timestamp(state.created)))
        for severity, count in sorted(state.vulnerabilities.items()):
            vulnerabilities.add_metric([state.key, str(severity).lower()], float(count))
        if state.digest is not None:
            info.add_metric(
                [state.key], {"digest": state.digest, "base_digest": state.base_digest or ""}
            )
        # whatever the status: a vulnerable (or failed, unsigned) image can be stale too
        behind = state.status == "stale" or bool(state.plan_reasons)
        stale.add_metric([state.key], 1.0 if behind else 0.0)
        if state.signed in ("yes", "no"):
            signed.add_metric([state.key], 1.0 if state.signed == "yes" else 0.0)
    yield from (age, vulnerabilities, info, stale, signed)


def build_duration(durations: Sequence[tuple[str, str, float]]) -> Metric:
    """The histogram of recorded build times (built and failed outcomes alike)."""
    counts = [0] * (len(BUILD_BUCKETS) + 1)
    total = 0.0
    for _key, _status, seconds in durations:
        counts[bisect.bisect_left(BUILD_BUCKETS, seconds)] += 1
        total += seconds
    buckets: list[tuple[str, float]] = []
    cumulative = 0
    for bound, count in zip((*BUILD_BUCKETS, float("inf")), counts, strict=True):
        cumulative += count
        buckets.append(("+Inf" if bound == float("inf") else _bound(bound), cumulative))
    return HistogramMetricFamily(
        "socle_build_duration_seconds",
        "How long recorded image builds took.",
        buckets=buckets,
        sum_value=total,
    )


def collector_registry(console: Console) -> CollectorRegistry:
    """A registry of this console's own (never prometheus-client's global one)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        HistoryCollector(
            console.store, lambda: console.catalog_key, lambda: len(console.runner.pending)
        )
    )
    return registry


def routes(console: Console) -> list[BaseRoute]:
    registry = collector_registry(console)

    async def metrics(_request: Request) -> Response:
        try:
            body = await run_in_threadpool(generate_latest, registry)
        except SocleError as exc:
            log.warning("/metrics: %s", exc.message)
            return PlainTextResponse(f"metrics unavailable: {exc.message}\n", status_code=503)
        return Response(body, headers={"content-type": CONTENT_TYPE})

    return [Route("/metrics", metrics, methods=["GET"], name="metrics")]


def _timestamp(when: datetime) -> float:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _bound(value: float) -> str:
    return f"{value:.1f}"
