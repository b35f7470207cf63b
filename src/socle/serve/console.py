"""What every console route shares: settings, history, runner, templates, the catalog."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from starlette.templating import Jinja2Templates

from socle.core.catalog import Catalog
from socle.core.graph import Graph
from socle.history.store import HistoryStore
from socle.serve.runner import Runner, RunRequest
from socle.serve.settings import ConsoleSettings
from socle.signing.keys import PublicKey, SigningKey
from socle.validate import validate

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


@dataclass
class Console:
    settings: ConsoleSettings
    store: HistoryStore
    signing_key: SigningKey | None = None
    verify_key: PublicKey | None = None
    runner: Runner = field(init=False)
    templates: Jinja2Templates = field(init=False)
    refreshed: threading.Event = field(default_factory=threading.Event)  # set after each refresh

    def __post_init__(self) -> None:
        self.runner = Runner(self.execute)
        self.templates = Jinja2Templates(directory=str(TEMPLATES))
        self._stop = threading.Event()
        self._refresher: threading.Thread | None = None
        self._refresh_lock = threading.Lock()

    @property
    def catalog_key(self) -> str:
        """The catalog as the history names it (its resolved path)."""
        return str(self.settings.catalog.resolve())

    def load(self) -> tuple[Catalog, Graph]:
        """The catalog as it is on disk now (re-read: it may have changed)."""
        return validate(self.settings.catalog, registry=self.settings.registry)

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self.runner.start()
        self._refresher = threading.Thread(
            target=self._refresh_loop, name="socle-refresh", daemon=True
        )
        self._refresher.start()

    def stop(self) -> None:
        self._stop.set()
        self.runner.stop()
        if self._refresher is not None:
            self._refresher.join(5)

    def _refresh_loop(self) -> None:
        while not self._stop.is_set():
            self._mark_dead_runs()
            self.refresh_safely()
            self._forget_old_runs()
            self._stop.wait(self.settings.refresh_seconds)

    def _mark_dead_runs(self) -> None:
        """Runs of this host whose process died (SIGKILL, a power loss) end as interrupted."""
        from socle.recording import mark_dead_runs

        mark_dead_runs(self.store)

    def _forget_old_runs(self) -> None:
        """History retention: runs beyond the newest `keep_runs` go, with their events."""
        from socle.errors import SocleError

        try:
            if forgotten := self.store.prune_runs(self.settings.keep_runs):
                log.info(
                    "forgot %d run(s) beyond the newest %d", forgotten, self.settings.keep_runs
                )
        except SocleError as exc:
            log.warning("forgetting old runs failed: %s", exc.message)

    def refresh_safely(self) -> None:
        """Read the registry into the overview's rows; a failure is logged, the old rows stay."""
        from socle.errors import SocleError

        try:
            self.refresh()
        except SocleError as exc:
            log.warning("refreshing the overview failed: %s", exc.message)
        except Exception:
            log.exception("refreshing the overview failed")

    def refresh(self) -> None:
        """Compute every variant's status from the registry and store it (serve/snapshot.py)."""
        from socle.serve.snapshot import refresh

        with self._refresh_lock:
            refresh(self)
        self.refreshed.set()

    # -- runs ---------------------------------------------------------------------------------

    def submit(self, request: RunRequest) -> bool:
        return self.runner.submit(request)

    def execute(self, request: RunRequest) -> None:
        """Run one request with the history recording it, then refresh the overview."""
        from socle.serve.execute import execute

        try:
            execute(self, request)
        finally:
            self.refresh_safely()
