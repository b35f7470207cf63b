from __future__ import annotations

from socle.cli import main

main()
