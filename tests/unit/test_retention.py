"""Retention: the pure decision over collected facts, the deletion order, and a prune (and an
interrupted one, finished by a second run) against a fake registry."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from socle.canonical import sha256_digest
from socle.errors import InputError
from socle.oci.media import CREATED, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, REF_NAME
from socle.oci.reference import Reference
from socle.registry.client import RegistryClient
from socle.retention import (
    Attachment,
    Doomed,
    Facts,
    Generation,
    Leftover,
    PrunePlan,
    RetentionPolicy,
    VariantTags,
    apply_prune,
    decide,
    deletion_order,
    find_prunable,
    parse_duration,
    scan_deployments,
)
from socle.signing.attach import sign
from socle.validate import validate
from tests.conftest import CatalogWriter
from tests.unit.registry.registry_fakes import FakeRegistry
from tests.unit.signing.signing_helpers import new_key

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
JAVA = VariantTags("java:17-debian12", "my/java", "17-debian12", ("17-debian12", "17", "latest"))


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


def gen(n: int, days_old: float, *tags: str, ref_name: str = "17-debian12") -> Generation:
    return Generation(
        "my/java",
        digest(n),
        ref_name,
        NOW - timedelta(days=days_old),
        tuple(tags),
        (Attachment("signature", digest(1000 + n), f"sha256-{n:064x}.sig"),),
    )


def plan_of(
    *generations: Generation,
    keep: int = 3,
    older_than: str | None = None,
    leftovers: tuple[Leftover, ...] = (),
    deployments: dict[str, tuple[str, ...]] | None = None,
) -> PrunePlan:
    policy = RetentionPolicy(keep, parse_duration(older_than) if older_than else None, NOW)
    facts = Facts("r.test", (JAVA,), generations, leftovers, deployments or {})
    return decide(facts, policy)


def kept(plan: PrunePlan) -> dict[str, tuple[str, ...]]:
    return {k.digest: k.reasons for v in plan.variants for k in v.kept}


def deleted(plan: PrunePlan) -> list[str]:
    return [d.digest for v in plan.variants for d in v.deleted]


def test_the_last_n_generations_are_kept_newest_first_and_the_rest_deleted() -> None:
    plan = plan_of(
        gen(1, 50), gen(2, 40), gen(3, 30), gen(4, 20), gen(5, 1, "17-debian12", "17", "latest")
    )
    assert kept(plan) == {
        digest(5): (
            "exact tag 17-debian12",
            "floating tag 17",
            "floating tag latest",
            "generation 1 of 3",
        ),
        digest(4): ("generation 2 of 3",),
        digest(3): ("generation 3 of 3",),
    }
    assert deleted(plan) == [digest(2), digest(1)]  # newest first
    assert plan.manifests == 4  # each: its signature, then the image


def test_the_current_generation_counts_first_even_with_an_older_clock() -> None:
    plan = plan_of(gen(1, 5, "17-debian12"), gen(2, 1), gen(3, 2), keep=2)
    assert set(kept(plan)) == {digest(1), digest(2)}
    assert deleted(plan) == [digest(3)]


def test_a_days_generations_stamped_alike_are_ordered_by_when_they_were_signed() -> None:
    """Reproducible builds stamp every image of a day with that day: the signatures order them."""
    same_day = NOW.replace(hour=0)

    def signed_at(n: int, hours: int) -> Generation:
        referrer = Attachment("referrer", digest(2000 + n), created=same_day.replace(hour=hours))
        return replace(gen(n, 0), created=same_day, attachments=(referrer, *gen(n, 0).attachments))

    plan = plan_of(
        signed_at(1, 9), signed_at(2, 11), signed_at(3, 10), gen(4, 0, "17-debian12"), keep=2
    )
    assert set(kept(plan)) == {digest(4), digest(2)}
    assert deleted(plan) == [digest(3), digest(1)]


def test_a_tagged_digest_is_never_deleted_even_beyond_keep() -> None:
    plan = plan_of(gen(1, 90, "17"), gen(2, 60), gen(3, 1, "17-debian12", "latest"), keep=1)
    assert kept(plan)[digest(1)] == ("floating tag 17",)
    assert deleted(plan) == [digest(2)]


def test_a_digest_a_rendered_deployment_pins_is_kept(tmp_path: Path) -> None:
    (tmp_path / "app" / "base").mkdir(parents=True)
    pinned = tmp_path / "app" / "base" / "deployment.yaml"
    pinned.write_text(f"image: r.test/my/java@{digest(1)}\n")
    (tmp_path / "app" / "README").write_text("no digest here sha256:1234\n")
    pins = scan_deployments([tmp_path / "app"])
    assert pins == {digest(1): (str(pinned),)}
    plan = plan_of(gen(1, 90), gen(2, 60), gen(3, 1, "17-debian12"), keep=1, deployments=pins)
    assert kept(plan)[digest(1)] == (f"deployment {pinned}",)
    assert deleted(plan) == [digest(2)]


def test_a_missing_deployments_folder_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such folder"):
        scan_deployments([tmp_path / "nowhere"])


def test_a_pending_tag_move_and_the_base_of_a_kept_child_are_kept() -> None:
    tool = VariantTags("tool:1-java17-debian12", "my/tool", "1-java17-debian12", ("1",))
    child = Generation(
        "my/tool", digest(9), "1-java17-debian12", NOW, ("1-java17-debian12",), base=digest(1)
    )
    facts = Facts(
        "r.test",
        (JAVA, tool),
        (gen(1, 90), gen(2, 60), gen(3, 50), gen(4, 1, "17-debian12"), child),
        pending={digest(2): ("17",)},
    )
    plan = decide(facts, RetentionPolicy(1, None, NOW))
    assert kept(plan)[digest(1)] == ("base of 1 kept generation of tool:1-java17-debian12",)
    assert kept(plan)[digest(2)] == ("pending move of tag 17 (socle-moves)",)
    assert deleted(plan) == [digest(3)]


def test_older_than_keeps_the_young_generations_too() -> None:
    plan = plan_of(
        gen(1, 45), gen(2, 31), gen(3, 29), gen(4, 1, "17-debian12"), keep=1, older_than="30d"
    )
    assert kept(plan)[digest(3)] == ("younger than 30d",)
    assert deleted(plan) == [digest(2), digest(1)]


def test_what_cannot_be_dated_or_attributed_is_kept() -> None:
    undated = Generation("my/java", digest(1), "17-debian12", None)
    stranger = Generation("my/java", digest(2), "8-debian11", NOW - timedelta(days=400))
    plan = plan_of(undated, stranger, gen(3, 1, "17-debian12"), keep=1)
    assert kept(plan)[digest(1)] == ("no creation time",)
    assert plan.unattributed == (stranger,)
    assert deleted(plan) == []


def test_leftover_attachments_of_a_deleted_image_are_deleted_unless_pinned() -> None:
    sig = (Attachment("signature", digest(77), "sha256-...sig"),)
    gone = (Leftover("my/java", digest(7), sig), Leftover("my/java", digest(8), sig))
    plan = plan_of(gen(3, 1, "17-debian12"), leftovers=gone, deployments={digest(8): ("f",)})
    assert [(d.digest, d.present) for d in plan.leftovers] == [(digest(7), False)]
    assert deletion_order(plan.leftovers[0]) == [("signature", digest(77))]


def test_deletion_order_leaves_a_tag_to_find_the_generation_until_the_very_end() -> None:
    doomed = Doomed(
        "my/java",
        digest(1),
        NOW,
        (
            Attachment("referrer", digest(11)),
            Attachment("referrers index", digest(12), "sha256-1"),
            Attachment("signature", digest(13), "sha256-1.sig"),
            Attachment("attestation", digest(14), "sha256-1.att"),
            Attachment("referrer", digest(15)),
        ),
        platforms=(digest(16),),
    )
    assert deletion_order(doomed) == [
        ("referrer", digest(11)),
        ("referrer", digest(15)),
        ("attestation", digest(14)),
        ("signature", digest(13)),
        ("image", digest(1)),
        ("platform", digest(16)),
        ("referrers index", digest(12)),
    ]


@pytest.mark.parametrize("text", ["30", "d", "1y", "-3d", "3 days", ""])
def test_bad_durations_are_one_clear_error(text: str) -> None:
    with pytest.raises(InputError, match="invalid duration"):
        parse_duration(text)


def test_durations() -> None:
    assert [parse_duration(t).seconds for t in ("30d", "12h", "2w", "90m")] == [
        2592000,
        43200,
        1209600,
        5400,
    ]
    with pytest.raises(InputError, match="at least the current generation"):
        RetentionPolicy(keep=0)


# -- against a fake registry: collect, apply, interrupt, finish -------------------------------


def push(client: RegistryClient, ref: Reference, exact: str, created: datetime) -> str:
    config = json.dumps({"created": created.isoformat()}).encode()
    client.ensure_blob(ref, sha256_digest(config), config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": OCI_CONFIG,
                "size": len(config),
                "digest": sha256_digest(config),
            },
            "layers": [],
            "annotations": {REF_NAME: exact, CREATED: created.strftime("%Y-%m-%dT%H:%M:%SZ")},
        }
    ).encode()
    return client.put_manifest(ref.with_tag(exact), manifest, OCI_MANIFEST)


class Interrupted(Exception):
    pass


def test_prune_on_a_registry_deletes_old_signed_generations_and_a_rerun_finishes(
    write_catalog: CatalogWriter,
) -> None:
    path = write_catalog(
        f"""\
        registry: r.test
        namespace: t
        images:
          base:
            upstream: upstream/busybox
            versions:
              "1": {{digest: "{digest(0)}"}}
          app:
            parents: [base]
            versions: ["1"]
        """,
        contexts=("app",),
    )
    catalog, graph = validate(path)
    fake = FakeRegistry()
    client = RegistryClient(transport=httpx.MockTransport(fake), sleep=lambda _: None)
    _, _, key = new_key()
    app = Reference("r.test", "t/app", tag="1-base1")
    digests = []
    for n in range(5):  # five rebuilds, each signed; the exact tag moves every time
        digests.append(push(client, app, "1-base1", NOW - timedelta(days=10 - n)))
        sign(client, app.with_digest(digests[-1]), key)
    client.tag(app.with_digest(digests[0]), "pinned-by-hand")

    plan = find_prunable(catalog, graph, client, RetentionPolicy(2, None, NOW))
    (app_plan,) = [v for v in plan.variants if v.key == "app:1-base1"]
    assert [k.digest for k in app_plan.kept] == [digests[4], digests[3], digests[0]]
    assert [d.digest for d in app_plan.deleted] == [digests[2], digests[1]]
    assert {a.kind for a in app_plan.deleted[0].attachments} == {
        "referrer",
        "referrers index",
        "signature",
    }

    # Interrupted after the third deletion: the next run finds what is left and finishes.
    real_delete = client.delete_manifest
    calls: list[Reference] = []

    def flaky(ref: Reference) -> None:
        if len(calls) == 3:
            raise Interrupted
        calls.append(ref)
        real_delete(ref)

    client.delete_manifest = flaky  # type: ignore[method-assign]
    with pytest.raises(Interrupted):
        apply_prune(plan, client)
    client.delete_manifest = real_delete  # type: ignore[method-assign]
    again = find_prunable(catalog, graph, client, RetentionPolicy(2, None, NOW))
    # digests[2] lost its referrer, signature and image: only its referrers index finds it now.
    assert [(d.digest, d.present) for d in again.doomed] == [
        (digests[1], True),
        (digests[2], False),
    ]
    result = apply_prune(again, client)
    assert result.manifests > 0
    repo = fake.repo("t/app")
    for gone in digests[1:3]:
        assert gone not in repo.manifests
        assert not any(t.startswith(f"sha256-{gone[7:]}") for t in repo.tags)
    for alive in (digests[0], digests[3], digests[4]):
        assert alive in repo.manifests
        assert f"sha256-{alive[7:]}.sig" in repo.tags
    assert repo.tags["1-base1"] == digests[4]
    # Nothing is left for a third run.
    assert find_prunable(catalog, graph, client, RetentionPolicy(2, None, NOW)).doomed == ()
    client.close()


def test_prune_refuses_a_bad_duration_in_one_line(
    write_catalog: CatalogWriter, capsys: pytest.CaptureFixture[str]
) -> None:
    from socle.cli import main

    path = write_catalog("registry: r.test\nnamespace: t\nimages: {}\n")
    with pytest.raises(SystemExit) as exited:
        main(["prune", "-c", str(path), "--older-than", "3 days"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "invalid duration '3 days'" in err and "30d" in err
    assert "Traceback" not in err


def test_the_gc_hint_names_the_config_of_the_registry_socle_up_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from socle.commands.prune import _gc_hint
    from socle.stack import StackPaths, render_registry_config

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    paths = StackPaths.default()
    paths.root.mkdir(parents=True)
    paths.registry_config.write_text(render_registry_config(paths, "127.0.0.1:5000"))
    assert f"docker-registry garbage-collect {paths.registry_config}" in _gc_hint("127.0.0.1:5000")
    assert "docker-registry garbage-collect CONFIG" in _gc_hint("127.0.0.1:5001")


def test_an_index_and_its_signed_platforms_go_together_and_the_current_ones_stay(
    write_catalog: CatalogWriter,
) -> None:
    """socle signs every platform of an index: those are parts of the index, never generations."""
    path = write_catalog(
        f"""\
        registry: r.test
        namespace: t
        architectures: [amd64, arm64]
        images:
          base:
            upstream: upstream/busybox
            versions:
              "1": {{digest: "{digest(0)}"}}
          app:
            parents: [base]
            versions: ["1"]
        """,
        contexts=("app",),
    )
    catalog, graph = validate(path)
    fake = FakeRegistry()
    client = RegistryClient(transport=httpx.MockTransport(fake), sleep=lambda _: None)
    _, _, key = new_key()
    app = Reference("r.test", "t/app", tag="1-base1")
    indexes: list[str] = []
    platforms: list[list[str]] = []
    for n in range(3):  # three rebuilds of a two-platform variant, everything signed
        created = NOW - timedelta(days=10 - n)
        pair = [push(client, app, "1-base1", created + timedelta(seconds=s)) for s in (1, 2)]
        for one in pair:
            sign(client, app.with_digest(one), key)
        entries = [
            {"mediaType": OCI_MANIFEST, "digest": d, "size": 1, "platform": p}
            for d, p in zip(
                pair,
                (
                    {"architecture": "amd64", "os": "linux"},
                    {"architecture": "arm64", "os": "linux"},
                ),
                strict=True,
            )
        ]
        stamp = created.strftime("%Y-%m-%dT%H:%M:%SZ")
        index = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": entries,
                "annotations": {REF_NAME: "1-base1", CREATED: stamp},
            }
        ).encode()
        indexes.append(client.put_manifest(app, index, OCI_INDEX))
        sign(client, app.with_digest(indexes[-1]), key)
        platforms.append(pair)

    plan = find_prunable(catalog, graph, client, RetentionPolicy(1, None, NOW))
    (app_plan,) = [v for v in plan.variants if v.key == "app:1-base1"]
    assert [k.digest for k in app_plan.kept] == [indexes[2]]
    assert [d.digest for d in app_plan.deleted] == [indexes[1], indexes[0]]
    apply_prune(plan, client)
    repo = fake.repo("t/app")
    for gone in [*indexes[:2], *platforms[0], *platforms[1]]:
        assert gone not in repo.manifests
        assert f"sha256-{gone[7:]}.sig" not in repo.tags
    for alive in [indexes[2], *platforms[2]]:
        assert alive in repo.manifests
        assert f"sha256-{alive[7:]}.sig" in repo.tags
    assert find_prunable(catalog, graph, client, RetentionPolicy(1, None, NOW)).doomed == ()
    client.close()
