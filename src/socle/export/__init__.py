"""Hand socle's graph to a CI engine: one job per variant, parents before children.

Each engine's module renders a :class:`socle.export.model.Pipeline` into the
engine's native files; :mod:`socle.export.output` writes them, refusing to
overwrite files socle did not write.
"""

from __future__ import annotations

# Engine name -> its module under socle.export (each defines `render(pipeline)`).
ENGINES: dict[str, str] = {
    "argo": "socle.export.argo",
    "github": "socle.export.github",
    "gitlab": "socle.export.gitlab",
    "jenkins": "socle.export.jenkins",
}
