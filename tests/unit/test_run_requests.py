"""A run asks the registry once per URL: the tag phase reuses what the plan read and pushed."""

from __future__ import annotations

from collections import Counter

import httpx

from socle.events import Status
from socle.registry.client import RegistryClient
from tests.conftest import CatalogWriter
from tests.unit.registry.registry_fakes import FakeRegistry
from tests.unit.test_executor import HOST, FakeBuilder, run, setup

LEAF = "leaf:3-mid2.0-base1"


def another_process(registry: FakeRegistry) -> RegistryClient:
    """A new client, as the next `socle build` would open (only the disk cache is shared)."""
    registry.requests.clear()
    return RegistryClient(transport=httpx.MockTransport(registry), sleep=lambda _: None)


def reads(registry: FakeRegistry) -> Counter[str]:
    return Counter(str(r.url) for r in registry.requests if r.method in ("HEAD", "GET"))


def test_a_run_with_nothing_to_build_reads_each_url_once_and_writes_nothing(
    write_catalog: CatalogWriter,
) -> None:
    registry = FakeRegistry()
    client, path = setup(write_catalog, registry)
    run(path, client, FakeBuilder())
    with another_process(registry) as fresh:
        statuses, _ = run(path, fresh, FakeBuilder())
    assert set(statuses.values()) == {Status.SKIPPED}
    # The plan's HEAD of each exact tag, the journal's GET of each family's record,
    # the tag phase's HEAD of each floating tag: nothing twice.
    twice = [url for url, count in reads(registry).items() if count > 1]
    assert twice == []
    assert {r.method for r in registry.requests} == {"HEAD", "GET"}
    # The leaf's exact tag is read by the plan only; its floating tag by the tag phase.
    heads = [r.url.path for r in registry.requests if r.method == "HEAD"]
    assert heads.count("/v2/t/leaf/manifests/3-mid2") == 1
    assert reads(registry)[f"https://{HOST}/v2/t/leaf/manifests/3-mid2.0-base1"] == 1


def test_the_tag_phase_sees_what_the_run_pushed_without_asking_again(
    write_catalog: CatalogWriter,
) -> None:
    registry = FakeRegistry()
    client, path = setup(write_catalog, registry)
    run(path, client, FakeBuilder())
    old = registry.repo("t/leaf").tags["3-mid2"]
    (path.parent / "leaf" / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n# v2\n")
    with another_process(registry) as fresh:
        statuses, _ = run(path, fresh, FakeBuilder())
    assert statuses[LEAF] is Status.BUILT
    assert {s for k, s in statuses.items() if k != LEAF} == {Status.SKIPPED}
    leaf = registry.repo("t/leaf").tags
    assert leaf["3-mid2"] != old and set(leaf.values()) == {leaf["3-mid2.0-base1"]}
    # The exact tag was read by the plan and then set by the run: never read after its PUT.
    exact = [
        r.method for r in registry.requests if r.url.path.endswith("/manifests/3-mid2.0-base1")
    ]
    assert len(exact) == 2 and exact[0] in ("HEAD", "GET") and exact[1] == "PUT"
    twice = [url for url, count in reads(registry).items() if count > 1]
    assert [url for url in twice if "/manifests/" in url] == []  # blob checks: the push path
