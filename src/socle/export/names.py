"""Engine names for jobs, refused when two variants would share one.

`Job.name` folds punctuation into dashes, so `app:1.0` and `app:1-0` meet at
`app-1-0`; an engine would then run one job and silently drop the other.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from socle.errors import InputError
from socle.export.model import Job, Pipeline


def unique(
    pipeline: Pipeline,
    name_of: Callable[[Job], str],
    *,
    engine: str,
    reserved: Collection[str] = (),
    max_length: int | None = None,
) -> dict[str, str]:
    """Variant key -> its name in `engine`, each distinct from the others and `reserved`."""
    names: dict[str, str] = {}
    owners: dict[str, str] = {name: f"the {name} step" for name in reserved}
    for job in pipeline.jobs:
        name = name_of(job)
        if name in owners:
            raise InputError(
                f"{pipeline.catalog}: {owners[name]} and {job.key} both make the {engine} "
                f"job name {name!r}",
                hint="rename one of the versions so their tags differ by more than punctuation",
            )
        if max_length is not None and len(name) > max_length:
            raise InputError(
                f"{pipeline.catalog}: {job.key} makes the {engine} job name {name!r}, "
                f"longer than the {max_length} characters {engine} accepts",
                hint="shorten the image's name or version",
            )
        owners[name] = job.key
        names[job.key] = name
    return names
