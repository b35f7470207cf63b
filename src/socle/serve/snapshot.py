"""The overview's rows, read from the registry: one refresh, then pages read the database.

A refresh plans the catalog against the registry (what `socle plan` sees), reads
each published manifest's annotations, checks signatures with the console's key,
and replaces the catalog's rows in the history's `variant_states`. Pages never
talk to the registry for the overview or the lineage; only an image page's
signature layouts, provenance and SBOM are fetched lazily, and kept by digest.

A variant's status is the first of these that holds:

- failed: the newest recorded outcome for the variant failed or was blocked;
- missing: nothing is published under its exact tag;
- vulnerable: the published digest's recorded scan has a finding worse than the
  policy's `max_severity` (high and critical without a policy) that no allowlist
  entry valid today covers;
- unsigned: a verify key is set and no signature verifies (none found, or invalid);
- stale: the plan would rebuild it now (the reasons say why);
- current: otherwise. Without a verify key the signature is "unknown", never a status.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from socle.core.findings import Severity
from socle.core.plan import Plan, Step
from socle.core.policy import Policy
from socle.core.state import FINGERPRINT, GATES, INPUTS
from socle.history.store import OutcomeView, StateView
from socle.oci.media import BASE_DIGEST, BASE_NAME, CREATED
from socle.oci.reference import Reference

if TYPE_CHECKING:
    from socle.registry.client import RegistryClient
    from socle.registry.state import RegistryState
    from socle.serve.console import Console
    from socle.signing.keys import PublicKey
    from socle.signing.verify import Verification

# StateView.signed as /metrics reads it: "yes", "no", or None while unknown (no --key).
SIGNED = {"verified": "yes", "unsigned": "no", "invalid": "no"}
STATUSES = ("current", "stale", "vulnerable", "unsigned", "failed", "missing")
SOCLE_PREFIX = "io.github.socle."
WORKERS = 8


@dataclass(frozen=True)
class Signature:
    """What the signature check says of one digest: verified, unsigned, invalid or unknown."""

    word: str
    reason: str


class DigestCache:
    """Results by digest: a verified one is kept (it cannot change for a digest), a negative
    one (unsigned, no attestation) only for `retry` seconds, since a signer may add it later.
    """

    def __init__(self, limit: int = 4096, retry: float = 60.0) -> None:
        self.limit = limit
        self.retry = retry
        self._items: dict[tuple[str, str], tuple[Any, float | None]] = {}
        self._lock = threading.Lock()

    def get(self, kind: str, digest: str) -> tuple[bool, Any]:
        """(found, value): a negative entry past its time is not found."""
        with self._lock:
            item = self._items.get((kind, digest))
            if item is None:
                return False, None
            value, until = item
            if until is not None and time.monotonic() > until:
                del self._items[(kind, digest)]
                return False, None
            return True, value

    def put(self, kind: str, digest: str, value: Any, *, final: bool = True) -> None:
        with self._lock:
            if len(self._items) >= self.limit:
                self._items.pop(next(iter(self._items)))
            until = None if final else time.monotonic() + self.retry
            self._items[(kind, digest)] = (value, until)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


CACHE = DigestCache()


def refresh(console: Console) -> None:
    """Read every variant's state from the registry into the history's `variant_states`."""
    from socle.planning import plan_with_state
    from socle.registry.state import RegistryState

    catalog, graph = console.load()
    with RegistryState.from_config() as state:
        plan = plan_with_state(catalog, graph, state)
        manifests = _annotations(state, plan, catalog.registry)
        signatures = _signatures(state.client, plan, catalog.registry, console.verify_key)
    states = build_states(
        plan,
        annotations=manifests,
        signatures=signatures,
        latest=console.store.latest_outcomes(),
        built=console.store.latest_built(),
        policy=catalog.policy,
        verify=console.verify_key is not None,
    )
    console.store.replace_states(console.catalog_key, states)


def build_states(
    plan: Plan,
    *,
    annotations: Mapping[str, Mapping[str, str]],
    signatures: Mapping[str, Signature],
    latest: Mapping[str, OutcomeView],
    built: Mapping[str, OutcomeView],
    policy: Policy | None,
    verify: bool,
    today: date | None = None,
) -> list[StateView]:
    """One row per step of `plan` (a pure function: the unit tests' entry point)."""
    now = datetime.now(UTC)
    day = today or now.date()
    rows = []
    for step in plan.steps:
        variant = step.variant
        published = step.published
        digest = published.digest if published else None
        notes = dict(annotations.get(variant.key, {}))
        scan = scan_of(built.get(variant.key), digest)
        vulnerable = blocking_findings(scan, policy, day) if digest else []
        signature = signatures.get(variant.key, Signature("unknown", "no verify key (--key)"))
        reasons = [r.text for r in step.reasons]
        status = "current"
        newest = latest.get(variant.key)
        if newest is not None and newest.status in ("failed", "blocked"):
            status = "failed"
            reasons.insert(0, f"the last run {newest.status}: {_first_line(newest.error or '')}")
        elif published is None:
            status = "missing"
        elif vulnerable:
            status = "vulnerable"
            reasons.insert(0, "vulnerable: " + ", ".join(vulnerable[:5]))
        elif verify and signature.word != "verified":
            status = "unsigned"
            reasons.insert(0, signature.reason)
        elif step.reasons:
            status = "stale"
        rows.append(
            StateView(
                key=variant.key,
                image=variant.image.name,
                repository=variant.image.repository,
                parent=variant.parent.key if variant.parent else None,
                level=step.level,
                tags=tuple(variant.tags),
                digest=digest,
                base_name=notes.get(BASE_NAME),
                base_digest=notes.get(BASE_DIGEST)
                or (published.base_digest if published else None),
                created=_parse_time(
                    notes.get(CREATED) or (published.created if published else None)
                ),
                status=status,
                reasons=tuple(reasons),
                annotations={
                    k: v for k, v in notes.items() if k.startswith(SOCLE_PREFIX) and k != INPUTS
                },
                vulnerabilities=severities_of(scan),
                signed=SIGNED.get(signature.word),
                refreshed_at=now,
            )
        )
    return rows


def scan_of(outcome: OutcomeView | None, digest: str | None) -> Mapping[str, Any] | None:
    """The recorded scan of the newest built outcome, if it built the published digest."""
    if outcome is None or (digest is not None and outcome.digest not in (None, digest)):
        return None
    scan = outcome.details.get("scan")
    return scan if isinstance(scan, Mapping) else None


def severities_of(scan: Mapping[str, Any] | None) -> dict[str, int]:
    raw = scan.get("severities") if scan else None
    if not isinstance(raw, Mapping):
        return {}
    return {str(k): int(v) for k, v in raw.items() if isinstance(v, int)}


def blocking_findings(
    scan: Mapping[str, Any] | None, policy: Policy | None, today: date
) -> list[str]:
    """CVEs worse than tolerated and not covered by an allowlist entry valid `today`."""
    if scan is None:
        return []
    threshold = policy.max_severity if policy is not None else Severity.MEDIUM
    allowed = {e.cve for e in (policy.allowlist if policy else ()) if e.valid_on(today)}
    found: list[str] = []
    findings = scan.get("findings")
    if isinstance(findings, list) and findings:
        for item in findings:
            if not isinstance(item, Mapping):
                continue
            try:
                severity = Severity(str(item.get("severity", "unknown")))
            except ValueError:
                continue
            cve = str(item.get("cve", "?"))
            if severity > threshold and cve not in allowed and cve not in found:
                found.append(cve)
        return found
    for name, count in severities_of(scan).items():  # no findings recorded: the counts decide
        try:
            severity = Severity(name)
        except ValueError:
            continue
        if count and severity > threshold and not allowed:
            found.append(f"{count} {name}")
    return found


def _annotations(state: RegistryState, plan: Plan, registry: str) -> dict[str, dict[str, str]]:
    """Each published variant's manifest annotations (manifests are cached on disk by digest)."""

    def read(step: Step) -> tuple[str, dict[str, str]]:
        assert step.published is not None
        ref = Reference.parse(step.variant.ref(registry))
        try:
            manifest = state.manifest_json(ref, step.published.digest)
        except Exception:  # a vanished manifest: the row shows what the plan knew
            return step.variant.key, {}
        raw = manifest.get("annotations")
        notes = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
        return step.variant.key, notes

    published = [s for s in plan.steps if s.published is not None]
    if not published:
        return {}
    with ThreadPoolExecutor(max_workers=min(WORKERS, len(published))) as pool:
        return dict(pool.map(read, published))


def _signatures(
    client: RegistryClient, plan: Plan, registry: str, key: PublicKey | None
) -> dict[str, Signature]:
    if key is None:
        return {}
    published = [s for s in plan.steps if s.published is not None]

    def check(step: Step) -> tuple[str, Signature]:
        assert step.published is not None
        ref = Reference.parse(step.variant.ref(registry)).with_digest(step.published.digest)
        return step.variant.key, signature_of(client, ref, key)

    if not published:
        return {}
    with ThreadPoolExecutor(max_workers=min(WORKERS, len(published))) as pool:
        return dict(pool.map(check, published))


def signature_of(client: RegistryClient, ref: Reference, key: PublicKey) -> Signature:
    """Verified, unsigned or invalid; a verified digest is remembered (it stays verified)."""
    assert ref.digest is not None
    result = verification(client, ref, key)
    if result is None:
        return Signature("unknown", "the signatures could not be read")
    if result.valid:
        return Signature("verified", result.reason)
    if not result.found:
        return Signature("unsigned", "no signature found in either layout")
    return Signature("invalid", result.reason)


def verification(client: RegistryClient, ref: Reference, key: PublicKey) -> Verification | None:
    """Both signature layouts of `ref` (by digest); a valid result is cached by digest."""
    from socle.errors import SocleError
    from socle.signing.verify import verify

    assert ref.digest is not None
    found, cached = CACHE.get("signature", ref.digest)
    if found:
        return cached  # type: ignore[no-any-return]
    try:
        result = verify(client, ref, key)
    except SocleError:
        return None
    CACHE.put("signature", ref.digest, result, final=result.valid)
    return result


def sbom_subjects(client: RegistryClient, ref: Reference) -> list[tuple[str | None, Reference]]:
    """What carries the SBOMs of `ref` (by digest): itself, or each platform of an index.

    socle attests an SBOM on every platform manifest of a multi-platform image
    (each has its own packages), not on the index: the list then names each
    platform (`linux/arm64/v8`) with its manifest, in the index's order. Cached
    by digest (a manifest never changes).
    """
    assert ref.digest is not None
    found, cached = CACHE.get("sbom subjects", ref.digest)
    if found:
        return cached  # type: ignore[no-any-return]
    manifest = client.get_manifest(ref)
    subjects: list[tuple[str | None, Reference]] = [(None, ref)]
    if manifest.is_index:
        subjects = [
            (str(child.platform), ref.with_digest(child.digest))
            for child in manifest.children()
            if child.platform is not None and child.platform.os != "unknown"
        ]
    CACHE.put("sbom subjects", ref.digest, subjects)
    return subjects


def attestation(
    client: RegistryClient, ref: Reference, key: PublicKey, predicate_type: str
) -> dict[str, Any] | None:
    """The verified statement of `predicate_type` about `ref` (by digest), cached; None if none."""
    from socle.errors import SocleError
    from socle.signing.errors import VerificationFailed
    from socle.signing.verify import verify_attestation

    assert ref.digest is not None
    kind = f"attestation {predicate_type}"
    found, cached = CACHE.get(kind, ref.digest)
    if found:
        return cached  # type: ignore[no-any-return]
    try:
        statement = verify_attestation(client, ref, key, predicate_type=predicate_type)
    except VerificationFailed:  # none there, or not verifying: ask again later
        CACHE.put(kind, ref.digest, None, final=False)
        return None
    except SocleError:  # the registry failed: nothing learnt
        return None
    CACHE.put(kind, ref.digest, statement)
    return statement


def socle_records(annotations: Mapping[str, Any]) -> list[tuple[str, str]]:
    """socle's gate records and fingerprint, short names first."""
    names = {k: k.removeprefix(SOCLE_PREFIX) for k in (*GATES, FINGERPRINT)}
    return [
        (names.get(k, k.removeprefix(SOCLE_PREFIX)), str(v)) for k, v in sorted(annotations.items())
    ]


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else "no error recorded"


__all__: Sequence[str] = (
    "CACHE",
    "STATUSES",
    "Signature",
    "attestation",
    "blocking_findings",
    "build_states",
    "refresh",
    "signature_of",
    "verification",
)
