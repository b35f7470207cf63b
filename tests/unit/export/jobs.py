"""Pipelines by hand for the renderers' unit tests: no catalog, no registry."""

from __future__ import annotations

from socle.export.model import Job

CATALOG = "images/catalog.yaml"


def make_job(
    key: str,
    parent: str | None = None,
    level: int = 0,
    variables: tuple[tuple[str, str], ...] = (),
    children: tuple[str, ...] = (),
) -> Job:
    """The job of variant `key` (`image:tag`) in the `my` namespace of 127.0.0.1:5000."""
    image, _, tag = key.partition(":")
    return Job(
        key=key,
        image=image,
        tag=tag,
        repository=f"my/{image}",
        ref=f"127.0.0.1:5000/my/{image}:{tag}",
        parent=parent,
        children=children,
        level=level,
        fingerprint=f"sha256:{'ab' * 32}",
        variables=variables,
    )
