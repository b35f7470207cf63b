"""GitLab CI: one pipeline with a job per variant, and its dynamic child-pipeline form.

Each variant's job `needs:` its parent's job, so GitLab runs the graph as a DAG
(independent branches in parallel) rather than stage by stage. The digest a
job published reaches its children through a dotenv report: the job writes
`SOCLE_DIGEST_<JOB>=sha256:...`, and GitLab exports it into every job that
needs that job with `artifacts: true`. Jobs that publish to the same repository
share a `resource_group`, so they never move that repository's tags at once.

The child-pipeline form regenerates the pipeline at run time (a `plan` job runs
`socle export gitlab`) and triggers it from that job's artifact, so the
pipeline always follows the catalog of the commit being built.
"""

from __future__ import annotations

from typing import Any

import yaml

from socle.export.model import DIGEST_FILE, Job, Pipeline, shell
from socle.export.names import unique

PIPELINE = ".gitlab-ci.yml"
CHILD = "child/.gitlab-ci.yml"
GENERATED = "socle-pipeline"  # the folder the child form's plan job exports into
DOTENV = "socle-digest.env"  # the dotenv report that carries a job's digest to its children
MAX_NEEDS = 50  # GitLab's default limit on the jobs one job may list in `needs:`
# Top-level keys of a GitLab pipeline, which a job may not be named after, and socle's own job.
RESERVED = (
    "promote", "stages", "variables", "default", "workflow", "include", "image", "services",
    "cache", "before_script", "after_script", "spec",
)  # fmt: skip


def render(pipeline: Pipeline) -> dict[str, str]:
    """The pipeline (`.gitlab-ci.yml`) and its child-pipeline form (`child/.gitlab-ci.yml`)."""
    unique(pipeline, lambda job: job.name, engine="GitLab", reserved=RESERVED)
    return {
        PIPELINE: document(pipeline, full_pipeline(pipeline)),
        CHILD: document(pipeline, child_pipeline(pipeline)),
    }


def digest_variable(job: Job) -> str:
    """The variable that holds `job`'s digest in its children: `SOCLE_DIGEST_JAVA_17_DEBIAN12`."""
    return "SOCLE_DIGEST_" + job.name.upper().replace("-", "_")


def full_pipeline(pipeline: Pipeline) -> dict[str, Any]:
    """Every variant's job, parents first, then `promote` in the last stage."""
    config: dict[str, Any] = {
        "stages": ["build", "promote"],
        "variables": {"SOCLE_REGISTRY": pipeline.registry},
    }
    for job in pipeline.jobs:
        config[job.name] = build_job(pipeline, job)
    config["promote"] = promote_job(pipeline)
    return config


def build_job(pipeline: Pipeline, job: Job) -> dict[str, Any]:
    """One variant: built on the digest its parent's job published, its own digest reported."""
    parent = pipeline.job(job.parent) if job.parent and pipeline.inside(job.parent) else None
    expected = f"${digest_variable(parent)}" if parent else None
    entry: dict[str, Any] = {
        "stage": "build",
        # A root (or a variant whose parent is outside this export) starts at once.
        "needs": [{"job": parent.name, "artifacts": True}] if parent else [],
        "resource_group": job.repository,
    }
    if job.variables:
        entry["variables"] = {name: variable(value) for name, value in job.variables}
    entry["script"] = [
        shell(job.build_command(pipeline.catalog, expected)),
        f'echo "{digest_variable(job)}=$(cat {DIGEST_FILE})" > {DOTENV}',
    ]
    entry["artifacts"] = {"reports": {"dotenv": DOTENV}}
    return entry


def variable(value: str) -> str | dict[str, Any]:
    """A build arg as a GitLab variable; a `$` in it is kept literally, not expanded."""
    return {"value": value, "expand": False} if "$" in value else value


def promote_job(pipeline: Pipeline) -> dict[str, Any]:
    """`socle promote` after every job: by `needs:` while GitLab allows, by stage beyond."""
    entry: dict[str, Any] = {"stage": "promote"}
    if len(pipeline.jobs) <= MAX_NEEDS:
        entry["needs"] = [{"job": j.name, "artifacts": False} for j in pipeline.jobs]
    else:
        # The promote stage starts once every build job succeeded; no artifacts needed.
        entry["dependencies"] = []
    entry["script"] = [shell(pipeline.promote_command())]
    return entry


def child_pipeline(pipeline: Pipeline) -> dict[str, Any]:
    """A `plan` job exports the pipeline as an artifact; a trigger job runs it as a child."""
    export = ["socle", "export", "gitlab", "-c", pipeline.catalog, "-o", GENERATED]
    return {
        "stages": ["plan", "build"],
        "variables": {"SOCLE_REGISTRY": pipeline.registry},
        "plan": {
            "stage": "plan",
            "script": [shell(export)],
            "artifacts": {"paths": [f"{GENERATED}/"]},
        },
        "build": {
            "stage": "build",
            "needs": [{"job": "plan", "artifacts": True}],
            "trigger": {
                "include": [{"artifact": f"{GENERATED}/{PIPELINE}", "job": "plan"}],
                "strategy": "depend",
            },
        },
    }


def document(pipeline: Pipeline, config: dict[str, Any]) -> str:
    header = (
        f"# Generated by socle (`socle export gitlab`) from {pipeline.catalog}.\n"
        "# Edits will be overwritten by the next export: change the catalog instead.\n"
    )
    body = yaml.safe_dump(config, sort_keys=False, width=1000, allow_unicode=True)
    return header + body
