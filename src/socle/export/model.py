"""What every exported pipeline is made of: one job per variant, and the promote step.

A job builds exactly one variant, on the parent digest its parent's job passed
down, and hands its own digest to its children:

    socle build -c CATALOG --only KEY --no-cascade --expect-parent DIGEST --digest-file FILE

The last step, `socle promote -c CATALOG`, moves the floating tags of every
family whose variants are all current, all or nothing per family. An engine's
renderer only decides how to spell this in its own format.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from socle.core.graph import Graph
from socle.core.plan import Plan

DIGEST_FILE = "socle-digest.txt"  # where a job leaves its variant's digest for its children


@dataclass(frozen=True)
class Job:
    """One variant's job."""

    key: str  # java:17-debian12, unique in the catalog
    image: str  # java: the family
    tag: str  # 17-debian12: the exact tag
    repository: str  # my/java
    ref: str  # registry/my/java:17-debian12
    parent: str | None  # the parent variant's key
    children: tuple[str, ...]
    level: int  # depth in the graph; a level builds in parallel
    fingerprint: str
    variables: tuple[tuple[str, str], ...]  # the image's own variables (its build args)

    @property
    def name(self) -> str:
        """A job name every engine accepts: `java-17-debian12`."""
        return job_name(self.key)

    def build_command(self, catalog: str, parent_digest: str | None) -> list[str]:
        """The argv of this job; `parent_digest` is the engine's spelling of the value."""
        command = ["socle", "build", "-c", catalog, "--only", self.key, "--no-cascade"]
        if self.parent is not None and parent_digest is not None:
            command += ["--expect-parent", parent_digest]
        return [*command, "--digest-file", DIGEST_FILE]


@dataclass(frozen=True)
class Pipeline:
    """The exported graph: jobs parents first, then the promote step."""

    catalog: str  # the catalog's path as the pipeline sees it (relative to the checkout)
    registry: str
    jobs: tuple[Job, ...]

    def job(self, key: str) -> Job:
        return next(j for j in self.jobs if j.key == key)

    def inside(self, key: str | None) -> bool:
        """True when `key` is a job of this pipeline (False for a parent left outside)."""
        return key is not None and any(j.key == key for j in self.jobs)

    def levels(self) -> list[list[Job]]:
        grouped: dict[int, list[Job]] = {}
        for job in self.jobs:
            grouped.setdefault(job.level, []).append(job)
        return [grouped[level] for level in sorted(grouped)]

    def families(self) -> list[str]:
        return list(dict.fromkeys(j.image for j in self.jobs))

    def promote_command(self) -> list[str]:
        return ["socle", "promote", "-c", self.catalog]


def job_name(key: str) -> str:
    """`java:17-debian12` -> `java-17-debian12`: lower case, letters, digits and dashes."""
    return re.sub(r"[^a-z0-9]+", "-", key.lower()).strip("-")


def pipeline(
    graph: Graph, plan: Plan, *, catalog: str, registry: str, only: Iterable[str] = ()
) -> Pipeline:
    """The pipeline of `graph` (or of the `only` images and their descendants)."""
    names = list(only)
    keys: set[str] | None = None
    if names:
        roots = graph.select(names)
        keys = {v.key for v in roots} | {d.key for v in roots for d in graph.descendants(v)}
    jobs = []
    for step in plan.steps:
        variant = step.variant
        if keys is not None and variant.key not in keys:
            continue
        jobs.append(
            Job(
                key=variant.key,
                image=variant.image.name,
                tag=variant.exact_tag,
                repository=variant.image.repository,
                ref=variant.ref(registry),
                parent=variant.parent.key if variant.parent else None,
                children=tuple(
                    c.key for c in graph.children(variant) if keys is None or c.key in keys
                ),
                level=step.level,
                fingerprint=step.fingerprint,
                variables=tuple(variant.version.build_args),
            )
        )
    return Pipeline(catalog, registry, tuple(jobs))


def shell(command: Sequence[str]) -> str:
    """`command` as one POSIX shell line; words that need it are single-quoted.

    Engine variables (`$PARENT_DIGEST`, `${{ ... }}`) are left for the engine to
    expand: a word starting with `$` is double-quoted instead.
    """
    words = []
    for word in command:
        if word.startswith("$"):
            words.append(f'"{word}"')
        elif re.fullmatch(r"[A-Za-z0-9_./:=@%+,-]+", word):
            words.append(word)
        else:
            words.append("'" + word.replace("'", "'\\''") + "'")
    return " ".join(words)
