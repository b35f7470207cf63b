"""Each variant's status from a plan, the history's outcomes and the signature checks."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from socle.canonical import canonical_json, sha256_digest
from socle.core.plan import Plan
from socle.core.policy import AllowEntry, Policy
from socle.core.state import MemoryState, Published
from socle.history.store import OutcomeView
from socle.oci.content import Manifest
from socle.oci.media import OCI_INDEX, OCI_MANIFEST
from socle.oci.reference import Reference
from socle.planning import plan_with_state
from socle.serve.snapshot import CACHE, Signature, blocking_findings, build_states, sbom_subjects
from socle.validate import validate
from tests.conftest import CatalogWriter

HOST = "127.0.0.1:1"
PIN = "sha256:" + "1" * 64
CATALOG = f"""
registry: {HOST}
namespace: t
images:
  base:
    upstream: {HOST}/up/base
    versions: {{"1": {{digest: "{PIN}"}}}}
  mid:
    parents: [base]
    versions: ["1.0"]
  leaf:
    parents: [mid]
    versions: ["2"]
"""
KEYS = ("base:1", "mid:1.0-base1", "leaf:2-mid1.0-base1")


def published_plan(path: Path) -> Plan:
    """The plan once every variant is published exactly as planned (all current)."""
    catalog, graph = validate(path)
    state = MemoryState()
    digests: dict[str, str] = {}
    for step in plan_with_state(catalog, graph, state).steps:
        parent = step.variant.parent
        digest = PIN if parent is None else "sha256:" + str(len(digests) + 2) * 64
        digests[step.variant.key] = digest
        state.publish(
            step.variant.ref(HOST),
            Published(
                digest,
                fingerprint=step.fingerprint,
                inputs=step.inputs,
                base_digest=digests[parent.key] if parent else None,
                created="2026-01-01T00:00:00Z",
            ),
        )
    return plan_with_state(catalog, graph, state)


@pytest.fixture
def plan(write_catalog: CatalogWriter) -> Plan:
    path = write_catalog(CATALOG, contexts=("mid", "leaf"))
    return published_plan(path)


def outcome(key: str, status: str, digest: str | None, **details: object) -> OutcomeView:
    return OutcomeView(
        key,
        status,
        digest,
        1.0,
        "boom\nmore" if status == "failed" else None,
        (),
        (),
        (),
        details,
        1,
    )


def states(plan: Plan, **kw: object) -> dict[str, tuple[str, tuple[str, ...]]]:
    options: dict[str, object] = {
        "annotations": {},
        "signatures": {},
        "latest": {},
        "built": {},
        "policy": None,
        "verify": False,
        "today": date(2026, 6, 1),
    }
    options.update(kw)
    rows = build_states(plan, **options)  # type: ignore[arg-type]
    return {r.key: (r.status, r.reasons) for r in rows}


def test_everything_published_as_planned_is_current(plan: Plan) -> None:
    found = states(plan)
    assert {k: s for k, (s, _) in found.items()} == dict.fromkeys(KEYS, "current")
    row = build_states(
        plan, annotations={}, signatures={}, latest={}, built={}, policy=None, verify=False
    )[1]
    assert row.parent == "base:1" and row.level == 1 and row.signed is None
    assert row.created is not None and row.created.year == 2026


def test_nothing_published_is_missing(write_catalog: CatalogWriter) -> None:
    path = write_catalog(CATALOG, contexts=("mid", "leaf"))
    catalog, graph = validate(path)
    plan = plan_with_state(catalog, graph, MemoryState())
    assert {s for s, _ in states(plan).values()} == {"missing"}


def test_a_changed_dockerfile_makes_the_variant_and_its_children_stale(
    write_catalog: CatalogWriter,
) -> None:
    path = write_catalog(CATALOG, contexts=("mid", "leaf"))
    plan = published_plan(path)
    (path.parent / "mid" / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN x\n")
    catalog, graph = validate(path)
    state = MemoryState({s.refs[0]: s.published for s in plan.steps if s.published})
    found = states(plan_with_state(catalog, graph, state))
    assert found["base:1"][0] == "current"
    assert found["mid:1.0-base1"] == ("stale", ("Dockerfile changed",))
    assert found["leaf:2-mid1.0-base1"] == ("stale", ("parent mid:1.0-base1 is rebuilt",))


def test_the_newest_outcome_failing_makes_the_variant_failed(plan: Plan) -> None:
    found = states(plan, latest={"mid:1.0-base1": outcome("mid:1.0-base1", "failed", None)})
    assert found["mid:1.0-base1"] == ("failed", ("the last run failed: boom",))
    blocked = states(plan, latest={"base:1": outcome("base:1", "blocked", None)})
    assert blocked["base:1"][0] == "failed"


def scan(*findings: tuple[str, str]) -> dict[str, object]:
    return {
        "scanner": "debian",
        "severities": {},
        "findings": [{"cve": c, "severity": s, "package": "p"} for c, s in findings],
    }


def test_a_high_finding_in_the_published_digest_makes_it_vulnerable(plan: Plan) -> None:
    digest = plan.steps[1].published.digest  # type: ignore[union-attr]
    built = {
        "mid:1.0-base1": outcome("mid:1.0-base1", "built", digest, scan=scan(("CVE-1", "high")))
    }
    assert states(plan, built=built)["mid:1.0-base1"] == ("vulnerable", ("vulnerable: CVE-1",))
    # A scan of another digest (an older build) says nothing about the published one.
    other = {
        "mid:1.0-base1": outcome(
            "mid:1.0-base1", "built", "sha256:" + "f" * 64, scan=scan(("CVE-1", "critical"))
        )
    }
    assert states(plan, built=other)["mid:1.0-base1"][0] == "current"


def test_the_policy_and_its_valid_allowlist_decide_what_is_vulnerable() -> None:
    report = scan(("CVE-1", "high"), ("CVE-2", "medium"), ("CVE-3", "critical"))
    today = date(2026, 6, 1)
    assert blocking_findings(report, None, today) == ["CVE-1", "CVE-3"]
    entry = AllowEntry("CVE-3", "unused", "ops", date(2026, 6, 1))
    assert blocking_findings(report, Policy(allowlist=(entry,)), today) == ["CVE-1"]
    # From the day after its expiry, the entry covers nothing.
    assert blocking_findings(report, Policy(allowlist=(entry,)), date(2026, 6, 2)) == [
        "CVE-1",
        "CVE-3",
    ]
    counts = {"scanner": "debian", "severities": {"critical": 2, "low": 3}, "findings": []}
    assert blocking_findings(counts, None, today) == ["2 critical"]


def test_with_a_verify_key_an_unverified_signature_is_unsigned(plan: Plan) -> None:
    signatures = {
        "base:1": Signature("verified", "verified"),
        "mid:1.0-base1": Signature("unsigned", "no signature found in either layout"),
        "leaf:2-mid1.0-base1": Signature("invalid", "NOT verified: bad"),
    }
    found = states(plan, signatures=signatures, verify=True)
    assert found["base:1"][0] == "current"
    assert found["mid:1.0-base1"] == ("unsigned", ("no signature found in either layout",))
    assert found["leaf:2-mid1.0-base1"][0] == "unsigned"
    rows = build_states(
        plan, annotations={}, signatures=signatures, latest={}, built={}, policy=None, verify=True
    )
    assert [r.signed for r in rows] == ["yes", "no", "no"]
    # Without a key, signatures never decide a status.
    assert states(plan, signatures=signatures)["mid:1.0-base1"][0] == "current"


def test_rows_carry_base_tags_and_socle_annotations(plan: Plan) -> None:
    notes = {
        "mid:1.0-base1": {
            "org.opencontainers.image.base.name": f"{HOST}/t/base:1",
            "org.opencontainers.image.base.digest": PIN,
            "io.github.socle.fingerprint": "sha256:abc",
            "io.github.socle.inputs": "{}",
            "org.opencontainers.image.created": "2026-02-03T04:05:06Z",
        }
    }
    rows = build_states(
        plan, annotations=notes, signatures={}, latest={}, built={}, policy=None, verify=False
    )
    mid = rows[1]
    assert mid.base_name == f"{HOST}/t/base:1" and mid.base_digest == PIN
    assert dict(mid.annotations) == {"io.github.socle.fingerprint": "sha256:abc"}
    assert mid.tags[0] == "1.0-base1"
    assert mid.created is not None and mid.created.month == 2


def test_the_digest_cache_keeps_verified_results_and_retries_negative_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from socle.serve import snapshot

    clock = [100.0]
    monkeypatch.setattr(snapshot.time, "monotonic", lambda: clock[0])
    cache = snapshot.DigestCache(limit=2, retry=60)
    cache.put("signature", "sha256:a", "verified")
    cache.put("sbom", "sha256:a", None, final=False)
    assert cache.get("sbom", "sha256:a") == (True, None)
    clock[0] += 61
    assert cache.get("sbom", "sha256:a") == (False, None)  # asked again after a minute
    assert cache.get("signature", "sha256:a") == (True, "verified")
    cache.put("signature", "sha256:b", "b")
    cache.put("signature", "sha256:c", "c")  # beyond the limit: the oldest goes
    assert cache.get("signature", "sha256:a") == (False, None)


class ManifestServer:
    """Serves one manifest under any reference, counting the requests."""

    def __init__(self, manifest: Manifest) -> None:
        self.manifest = manifest
        self.asked = 0

    def get_manifest(self, ref: Reference) -> Manifest:
        self.asked += 1
        return self.manifest


def test_an_indexs_sboms_are_on_its_platform_manifests_in_its_order() -> None:
    CACHE.clear()
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": "sha256:" + "a" * 64, "size": 10,
             "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": OCI_MANIFEST, "digest": "sha256:" + "b" * 64, "size": 10,
             "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {"mediaType": OCI_MANIFEST, "digest": "sha256:" + "c" * 64, "size": 10,
             "platform": {"os": "unknown", "architecture": "unknown"}},
        ],
    }  # fmt: skip
    data = canonical_json(index)
    server = ManifestServer(Manifest(OCI_INDEX, sha256_digest(data), data))
    ref = Reference("127.0.0.1:5000", "my/tool", digest=sha256_digest(data))

    subjects = sbom_subjects(server, ref)  # type: ignore[arg-type]

    assert [(p, r.digest) for p, r in subjects] == [
        ("linux/amd64", "sha256:" + "a" * 64),
        ("linux/arm64/v8", "sha256:" + "b" * 64),  # an attestation manifest ("unknown") is not
    ]
    assert sbom_subjects(server, ref) == subjects  # type: ignore[arg-type]
    assert server.asked == 1  # by digest: cached


def test_a_single_platform_image_carries_its_own_sbom() -> None:
    CACHE.clear()
    data = canonical_json({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []})
    ref = Reference("127.0.0.1:5000", "my/app", digest=sha256_digest(data))
    server = ManifestServer(Manifest(OCI_MANIFEST, sha256_digest(data), data))
    assert sbom_subjects(server, ref) == [(None, ref)]  # type: ignore[arg-type]
