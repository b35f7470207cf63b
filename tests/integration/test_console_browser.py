"""The console in a real browser: a real registry, real builds, a real `socle serve`.

Headless Chromium (Debian's package) driven by Playwright opens the overview,
follows an image, counts the lineage's nodes and watches a live run page
receive the progress of a `socle build` started from another process.
Screenshots land in $SOCLE_TEST_ARTIFACTS (else tmp_path/screenshots).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from socle.history.store import HistoryStore
from socle.process import run
from tests.integration.conftest import LocalRegistry, free_port, require
from tests.integration.helpers import skopeo_inspect, socle
from tests.integration.images import BUSYBOX, write_busybox_layout

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "console-test-passphrase"
KEYS = ("base:1.36", "tool:1.0-base1.36", "leaf:2-tool1.0-base1.36")


def write_catalog(root: Path, upstream: str) -> Path:
    image, digest = upstream.split("@")
    (root / "tool").mkdir(parents=True)
    (root / "tool" / "Dockerfile").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo tool > /tool\n"
    )
    (root / "leaf").mkdir()
    (root / "leaf" / "Dockerfile").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo leaf > /leaf\n"
    )
    path = root / "catalog.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            registry: 127.0.0.1:1
            namespace: console
            images:
              base:
                upstream: {image}
                versions:
                  "1.36": {{digest: "{digest}"}}
              tool:
                parents: [base]
                versions: ["1.0"]
              leaf:
                parents: [tool]
                versions: ["2"]
                tests:  # the live page must see events before the end: 3 s after the build
                  - name: takes its time
                    command: [sleep, "3"]
            """
        )
    )
    return path


class Served:
    """A `socle serve` process on a free loopback port."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "socle", "serve", *args, "--listen", f"127.0.0.1:{self.port}"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"socle serve exited: {log.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).text == "ok":
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        self.stop()
        pytest.fail(f"socle serve did not answer /healthz: {log.read_text()}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("SOCLE_TEST_ARTIFACTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """A fresh Chromium profile (a persistent context is how Playwright takes one)."""
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: run `make setup` (Debian's chromium package)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: run `make venv`")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            viewport={"width": 1280, "height": 800},
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield context
        context.close()


def shoot(page: Any, folder: Path, name: str) -> None:
    path = folder / f"console-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


def wait_for(check: Any, what: str, timeout: float = 60, *, fail: bool = True) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    if fail:
        pytest.fail(f"timed out waiting for {what}")
    return None


def test_the_console_in_chromium_shows_images_lineage_and_a_live_run(
    tmp_path: Path, browser: Any, artifacts: Path
) -> None:
    require("buildah")
    require("skopeo")
    if not BUSYBOX.exists():
        pytest.fail("/bin/busybox is missing: run `make setup`")
    registry = LocalRegistry(tmp_path / "registry")
    served: Served | None = None
    try:
        layout = tmp_path / "busybox"
        write_busybox_layout(layout)
        ref = f"{registry.host}/upstream/busybox:1"
        run(["skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout}", f"docker://{ref}"])
        upstream = f"{registry.host}/upstream/busybox@{skopeo_inspect(ref)['Digest']}"
        catalog = write_catalog(tmp_path / "cat", upstream)
        db = f"sqlite:///{tmp_path / 'history.db'}"
        env = {
            "SOCLE_REGISTRY": registry.host,
            "XDG_CACHE_HOME": str(tmp_path / "cache"),
            "XDG_DATA_HOME": str(tmp_path / "data"),
            "SOCLE_DB": db,
            "SOCLE_PASSWORD": PASSWORD,
        }
        keys = tmp_path / "keys" / "k"
        keys.parent.mkdir()
        made = socle("keygen", "--out", str(keys), env=env)
        assert made.returncode == 0, made.stderr
        key, pub = f"{keys}.key", f"{keys}.pub"
        build = ["build", "-c", str(catalog), "--builder", "buildah", "--sign-key", key]
        first = socle(*build, env=env)
        assert first.returncode == 0, first.stderr + first.stdout
        digests = {k: skopeo_inspect(f"{registry.host}/console/{k}")["Digest"] for k in KEYS}

        served = Served(
            ["-c", str(catalog), "--db", db, "--key", pub, "--refresh", "1"],
            {**os.environ, **env},
            tmp_path / "serve.log",
        )
        overview = ""

        def all_current() -> bool:
            nonlocal overview
            overview = httpx.get(served.url + "/").text
            return overview.count('data-status="current"') == 3

        if not wait_for(all_current, "three current variants", fail=False):
            pytest.fail(f"the overview never showed three current variants:\n{overview}")
        page = browser.new_page()

        # The overview, then an image followed by its link.
        page.goto(served.url + "/")
        rows = page.locator("table.overview tbody tr")
        assert rows.count() == 3
        assert sorted(rows.nth(i).get_attribute("data-key") or "" for i in range(3)) == sorted(KEYS)
        shoot(page, artifacts, "overview")
        page.click(f'a.image-link:text-is("{KEYS[1]}")')
        page.wait_for_url(re.compile(r"/images/tool"))
        assert page.locator("#digest").inner_text().strip() == digests[KEYS[1]]
        assert digests[KEYS[0]] in page.content()  # its base's digest
        assert page.locator("tr[data-layout] .sig.valid").count() == 2  # both layouts verify
        assert "slsa.dev/provenance" in page.content()
        shoot(page, artifacts, "image")
        sbom = httpx.get(served.url + f"/images/{KEYS[1]}/sbom")
        assert sbom.status_code == 200 and sbom.json()["bomFormat"] == "CycloneDX"

        # The lineage: one linked node per variant.
        page.goto(served.url + "/lineage")
        nodes = page.locator("svg.lineage a.node")
        assert nodes.count() == 3
        assert sorted(nodes.nth(i).get_attribute("data-key") or "" for i in range(3)) == sorted(
            KEYS
        )
        shoot(page, artifacts, "lineage")

        # A change to leaf, built by the CLI in another process; the live page follows it.
        (catalog.parent / "leaf" / "Dockerfile").write_text(
            "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN sleep 4 && echo leaf2 > /leaf\n"
        )
        store = HistoryStore.open(db)
        before = store.count_runs()
        builder = subprocess.Popen(
            [sys.executable, "-m", "socle", *build],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            running = wait_for(
                lambda: store.count_runs() > before and store.runs(limit=1)[0], "the new run"
            )
            page.goto(served.url + f"/runs/{running.id}")
            page.wait_for_selector("#log li.fresh", timeout=60_000)
            # An event arrived over SSE before the end: the run was still going.
            assert page.locator("#log").get_attribute("data-ended") is None
            shoot(page, artifacts, "live-run")
            page.wait_for_selector("#log[data-ended]", timeout=120_000)
            assert "leaf" in page.locator("#log").inner_text()
        finally:
            output, _ = builder.communicate(timeout=300)
        assert builder.returncode == 0, output
        page.wait_for_selector("table.outcomes", timeout=20_000)  # reloaded with its outcomes
        assert page.locator("#run-status").inner_text() == "succeeded"
        assert "built" in page.locator("table.outcomes").inner_text()
        shoot(page, artifacts, "run-finished")
        store.close()
    finally:
        if served is not None:
            served.stop()
        registry.stop()
