"""Plan a catalog against a published state: read inputs, look up the state, decide."""

from __future__ import annotations

from socle.catalog import Catalog
from socle.graph import Graph
from socle.inputs import InputReader
from socle.plan import Plan, make_plan
from socle.state import PublishedState


def plan_with_state(catalog: Catalog, graph: Graph, state: PublishedState) -> Plan:
    """The plan for `graph` given what `state` says is published (one batched lookup)."""
    reader = InputReader()
    inputs = {v.key: reader.components(v) for v in graph.variants}
    published = state.lookup([v.ref(catalog.registry) for v in graph.variants])
    return make_plan(graph, catalog.registry, inputs, published)


def plan_against_registry(catalog: Catalog, graph: Graph) -> Plan:
    """The plan against the catalog's live registry."""
    from socle.registry.state import RegistryState

    with RegistryState.from_config() as state:
        return plan_with_state(catalog, graph, state)
