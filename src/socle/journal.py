"""The tag phase's journal: the floating-tag moves a run intends, written to the registry first.

A registry has no transaction across tags. A run killed between two tag PUTs
leaves a family half-moved: `17` on the new build while `latest` is still on
the old one. Ordering cannot close that window, so the tag phase makes it
recoverable. Before its first PUT, the run records every move it is about to
make (tag → digest, with the variant that owns the tag), one small OCI
artefact per family in the catalog's repository `<namespace>/socle-moves`,
tagged after the family's repository (`my/java` → `my--java`), so image
repositories keep only image tags. After the family's tags have moved, the
record is marked done.

A run killed in between leaves a pending record that any reader finds with
one HEAD and one GET per family, from any machine: `socle plan` says which
family is half-moved, and the next `socle build` completes those moves before
it builds anything. Every digest in a record has passed its gates and carries
its exact tag, since the tag phase only starts after that.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from socle.canonical import sha256_digest
from socle.errors import SocleError
from socle.oci.media import CREATED, EMPTY, EMPTY_JSON, OCI_MANIFEST
from socle.oci.reference import Reference
from socle.registry.interface import Artifacts

JOURNAL = "socle-moves"  # the repository, under the catalog's namespace
ARTIFACT_TYPE = "application/vnd.socle.moves.v1+json"
MOVES = "dev.socle.moves"  # annotation: the moves, as JSON
STATE = "dev.socle.moves.state"  # annotation: "pending" or "done"
FAMILY = "dev.socle.moves.repository"  # annotation: the family's repository


def record_tag(repository: str) -> str:
    """The journal's tag for a family: its repository with `/` spelled `--`."""
    return repository.replace("/", "--")


class JournalError(SocleError):
    """A record under `socle-moves` that socle cannot read."""


@dataclass(frozen=True)
class Move:
    """Point `tag` at `digest`, the image of variant `key` (the tag's owner)."""

    tag: str
    digest: str
    key: str


@dataclass(frozen=True)
class Record:
    """The moves one run intended for one family (one repository)."""

    repository: str
    moves: tuple[Move, ...]
    done: bool
    created: str

    def describe(self) -> str:
        tags = " ".join(m.tag for m in self.moves)
        return f"{self.repository}: an interrupted run left its floating tags half-moved ({tags})"


def encode(record: Record) -> bytes:
    """The artefact manifest holding `record` (annotations only; the empty blob as content)."""
    empty = {"mediaType": EMPTY, "size": len(EMPTY_JSON), "digest": sha256_digest(EMPTY_JSON)}
    moves = [{"tag": m.tag, "digest": m.digest, "key": m.key} for m in record.moves]
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": empty,
        "layers": [empty],
        "annotations": {
            CREATED: record.created,
            FAMILY: record.repository,
            STATE: "done" if record.done else "pending",
            MOVES: json.dumps(moves, separators=(",", ":")),
        },
    }
    return json.dumps(document, separators=(",", ":")).encode()


def decode(repository: str, data: bytes, *, journal: str = JOURNAL) -> Record:
    """Read a record back; anything malformed is one clear error naming where it is."""
    where = f"{journal}:{record_tag(repository)}"
    fix = f"delete the tag {record_tag(repository)} of {journal} if no socle run wrote it"
    try:
        document = json.loads(data)
        annotations = document["annotations"]
        if document.get("artifactType") != ARTIFACT_TYPE:
            raise ValueError(f"artifactType {document.get('artifactType')!r}")
        if annotations.get(FAMILY) != repository:
            raise ValueError(f"it is the record of {annotations.get(FAMILY)!r}")
        state = annotations[STATE]
        if state not in ("pending", "done"):
            raise ValueError(f"state {state!r}")
        moves = tuple(
            Move(str(m["tag"]), str(m["digest"]), str(m["key"]))
            for m in json.loads(annotations[MOVES])
        )
        return Record(repository, moves, state == "done", str(annotations.get(CREATED, "")))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise JournalError(
            f"{where} is not a socle move record ({exc})", hint=fix
        ) from exc


class Journal:
    """Reads and writes the move records of a registry's families."""

    def __init__(self, client: Artifacts, registry: str, namespace: str = "") -> None:
        self.client = client
        self.registry = registry
        self.repository = f"{namespace}/{JOURNAL}" if namespace else JOURNAL

    def _ref(self, repository: str) -> Reference:
        return Reference(self.registry, self.repository, tag=record_tag(repository))

    def write(self, repository: str, moves: Sequence[Move], *, done: bool = False) -> None:
        """Record `moves` for `repository` (pending), or mark them done."""
        ref = self._ref(repository)
        self.client.ensure_blob(ref, sha256_digest(EMPTY_JSON), EMPTY_JSON)
        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        data = encode(Record(repository, tuple(moves), done, created))
        self.client.put_manifest(ref, data, OCI_MANIFEST)

    def pending(self, repositories: Iterable[str]) -> list[Record]:
        """The records not marked done, for the given repositories (one GET each, in bulk)."""
        names = sorted(set(repositories))
        found = self.client.find_manifests([self._ref(name) for name in names])
        records = []
        for name, manifest in zip(names, found, strict=True):
            if manifest is None:
                continue
            record = decode(name, manifest.data, journal=self.repository)
            if not record.done:
                records.append(record)
        return records
