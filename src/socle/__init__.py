"""socle: a factory for an organisation's trusted container base images."""

from __future__ import annotations

__version__ = "0.1.0"
