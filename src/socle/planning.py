"""Plan a catalog against a published state: read inputs, look up the state, decide."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from socle.core.catalog import Catalog
from socle.core.graph import Graph
from socle.core.plan import Plan, Reason, make_plan
from socle.core.state import PublishedState
from socle.inputs import InputReader


def plan_with_state(
    catalog: Catalog,
    graph: Graph,
    state: PublishedState,
    *,
    now: datetime | None = None,
    extra: Mapping[str, Sequence[Reason]] | None = None,
    selected: Collection[str] | None = None,
) -> Plan:
    """The plan for `graph` given what `state` says is published (one batched lookup).

    `now` defaults to the current time (for max_age); `extra` adds reasons from
    detectors such as pending security updates; `selected` limits what the run
    rebuilds (see `make_plan`).
    """
    reader = InputReader()
    refs = [v.ref(catalog.registry) for v in graph.variants]
    # The lookup mostly waits on the registry: the inputs are read meanwhile.
    with ThreadPoolExecutor(max_workers=1) as pool:
        lookup = pool.submit(state.lookup, refs)
        inputs = {v.key: reader.components(v) for v in graph.variants}
        published = lookup.result()
    moment = now or datetime.now(UTC)
    return make_plan(
        graph, catalog.registry, inputs, published, now=moment, extra=extra, selected=selected
    )
