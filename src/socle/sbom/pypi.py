"""Python distributions installed in an image, from their `*.dist-info/METADATA`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser

DIST_INFO_METADATA = re.compile(r"(?:^|/)[^/]+\.dist-info/METADATA$")
LICENCE_CLASSIFIER = "License :: "
# A `License:` longer than this is the licence's text, not its name.
MAX_LICENCE_NAME = 80


@dataclass(frozen=True)
class PythonDist:
    """A distribution's name, version and licences as its metadata states them."""

    name: str
    version: str
    licences: tuple[str, ...] = ()


def parse_metadata(data: bytes) -> PythonDist | None:
    """Parse core metadata (RFC 822 headers); None without a name and a version."""
    headers = BytesHeaderParser().parsebytes(data)
    name = str(headers.get("Name", "")).strip()
    version = str(headers.get("Version", "")).strip()
    if not name or not version:
        return None
    return PythonDist(name, version, _licences(headers))


def _licences(headers: Message) -> tuple[str, ...]:
    """License-Expression, else a short License, else the licence classifiers."""
    expression = str(headers.get("License-Expression", "")).strip()
    if expression:
        return (expression,)
    declared = str(headers.get("License", "")).strip()
    short = "\n" not in declared and len(declared) <= MAX_LICENCE_NAME
    if declared and short and declared.upper() != "UNKNOWN":
        return (declared,)
    named = (
        str(c).rsplit("::", 1)[-1].strip()
        for c in headers.get_all("Classifier") or []
        if str(c).startswith(LICENCE_CLASSIFIER)
    )
    return tuple(dict.fromkeys(n for n in named if n and n != "OSI Approved"))
