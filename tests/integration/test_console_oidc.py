"""The console's login through a real OIDC provider (Dex), and a write action it authorizes.

A real `socle serve --oidc-issuer` process and a real Dex run on loopback. httpx
follows the real login pages as a browser would. alice (in socle-admins) rebuilds
a tiny busybox image: the runner builds it with buildah into a registry of this
module's own, and /runs shows the run with her name. bob (logged in, not in the
group) gets 403; a forged form without the CSRF token gets 403; no session gets
401; after logging out, 401 again. No page, cookie or log line holds the client
secret, a password or a token.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from socle.history.store import HistoryStore, RunView
from socle.process import run
from socle.validate import validate
from tests.integration.conftest import REGISTRY_BIN, LocalRegistry, free_port, require
from tests.integration.dex import GROUP, USERS, Dex, login_form, running_dex, shows_login_error
from tests.integration.helpers import skopeo_inspect, socle
from tests.integration.images import write_busybox_layout

pytestmark = pytest.mark.integration

CLIENT_SECRET = "dex-client-secret-7f3a9c"  # must never show in a page or a log
KEY_PASSWORD = "console-oidc-key"  # the signing key's passphrase
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Console:
    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    db_url: str
    catalog: Path
    upstream: str
    base_key: str
    app_key: str
    app_ref: str

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="module")
def own_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    if not Path(REGISTRY_BIN).exists():
        pytest.fail("docker-registry is not installed: run `make setup` (or .ci/run) first")
    reg = LocalRegistry(tmp_path_factory.mktemp("oidc-registry"))
    yield reg
    reg.stop()


def write_catalog(root: Path, upstream: str, generation: int) -> Path:
    """The catalog; each `generation` changes the app's build, so its rebuild is a new one."""
    image, digest = upstream.split("@")
    (root / "app").mkdir(parents=True, exist_ok=True)
    (root / "app" / "Dockerfile").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG GENERATION\nRUN echo ${GENERATION} > /generation\n"
    )
    path = root / "catalog.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            registry: 127.0.0.1:1
            namespace: oidc
            images:
              base:
                upstream: {image}
                versions:
                  "1.36": {{digest: "{digest}"}}
              app:
                parents: [base]
                default_parent: base:1
                versions:
                  "1": {{args: {{GENERATION: "{generation}"}}}}
            """
        )
    )
    return path


@pytest.fixture(scope="module")
def setup(
    own_registry: LocalRegistry, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Console, Dex]]:
    require("skopeo")
    require("buildah")
    root = tmp_path_factory.mktemp("oidc")
    layout = root / "busybox"
    write_busybox_layout(layout)
    tag = f"{own_registry.host}/upstream/busybox:1"
    run(["skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout}", f"docker://{tag}"])
    upstream = f"{own_registry.host}/upstream/busybox@{skopeo_inspect(tag)['Digest']}"
    catalog = write_catalog(root / "catalog", upstream, 1)
    _cat, graph = validate(catalog, registry=own_registry.host)
    (base,) = [v for v in graph.variants if v.image.name == "base"]
    (app,) = [v for v in graph.variants if v.image.name == "app"]

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running_dex(root / "dex", f"{url}/auth/callback", CLIENT_SECRET) as dex:
        secret_file = root / "client-secret"
        secret_file.write_text(CLIENT_SECRET + "\n")
        secret_file.chmod(0o600)
        db_url = f"sqlite:///{root / 'history.db'}"
        env = {
            **os.environ,
            "SOCLE_REGISTRY": own_registry.host,
            "SOCLE_PASSWORD": KEY_PASSWORD,
            "XDG_CACHE_HOME": str(root / "cache"),
            "XDG_DATA_HOME": str(root / "data"),
        }
        made = socle("keygen", "--out", str(root / "ops"), env=env)
        assert made.returncode == 0, made.stderr
        log_path = root / "serve.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "socle", "serve", "-c", str(catalog),
                 "--listen", f"127.0.0.1:{port}", "--db", db_url, "--builder", "buildah",
                 "--sign-key", str(root / "ops.key"),
                 "--oidc-issuer", dex.issuer, "--oidc-client-id", dex.client_id,
                 "--oidc-client-secret-file", str(secret_file), "--oidc-group", GROUP],
                stdout=log, stderr=log, env=env,
            )  # fmt: skip
        console = Console(
            url,
            proc,
            log_path,
            db_url,
            catalog,
            upstream,
            base.key,
            app.key,
            f"{own_registry.host}/oidc/app",
        )
        try:
            wait_up(console)
            yield console, dex
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def wait_up(console: Console) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if console.proc.poll() is not None:
            pytest.fail(f"socle serve exited {console.proc.returncode}:\n{console.log()}")
        try:
            if httpx.get(f"{console.url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"socle serve did not answer in 60 s:\n{console.log()}")


def browser(console: Console) -> httpx.Client:
    return httpx.Client(base_url=console.url, timeout=30, follow_redirects=False)


def log_in(http: httpx.Client, email: str, *, next_path: str = "/") -> httpx.Response:
    """The whole code flow, as a browser: console -> Dex login form -> console callback."""
    page = http.get("/auth/login", params={"next": next_path}, follow_redirects=True)
    assert page.status_code == 200, page.text
    assert "/dex/auth/local" in str(page.url), page.url
    return login_form(http, page, email, USERS[email][0])


def csrf_of(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found, f"no CSRF token in {page.url}"
    return found[1]


def session_payload(http: httpx.Client) -> dict[str, object]:
    """The session cookie's content: Starlette signs it, but it is only base64 JSON."""
    cookie = http.cookies["socle_session"]
    data = cookie.split(".")[0]
    payload: dict[str, object] = json.loads(base64.b64decode(data + "=" * (-len(data) % 4)))
    return payload


def test_a_writer_logs_in_through_dex_and_rebuilds(setup: tuple[Console, Dex]) -> None:
    console, dex = setup
    pages: list[httpx.Response] = []
    with browser(console) as http:
        home = log_in(http, "alice@example.com", next_path="/runs")
        pages += [home, *home.history]
        assert home.status_code == 200, home.text
        assert str(home.url) == f"{console.url}/runs"
        assert "alice" in home.text and 'action="/auth/logout"' in home.text
        callback = next(r for r in home.history if r.url.path == "/auth/callback")
        assert callback.status_code == 303
        cookie = callback.headers["set-cookie"].lower()
        assert "socle_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
        session = session_payload(http)
        assert set(session) == {"user", "csrf"}
        assert session["user"] == {
            "name": "alice",
            "email": "alice@example.com",
            "groups": ["socle-admins", "socle-readers"],
            "exp": session["user"]["exp"],  # type: ignore[index]
        }
        token = csrf_of(home)

        # a forged form (no token, or another) is refused, and nothing runs
        assert http.post("/actions/rebuild", data={"key": console.app_key}).status_code == 403
        forged = http.post("/actions/rebuild", data={"key": console.app_key, "csrf": "x" * 43})
        assert forged.status_code == 403
        unknown = http.post("/actions/rebuild", data={"key": "nope:1", "csrf": token})
        assert unknown.status_code == 400 and "unknown variant 'nope:1'" in unknown.text
        assert http.get("/actions/rebuild").status_code == 405

        # the base's rebuild, and with it its child's, as the console's runner does it
        asked = http.post("/actions/rebuild", data={"key": console.base_key, "csrf": token})
        assert asked.status_code == 303 and asked.headers["location"] == "/runs"
        first_run = wait_for_run(console, "alice", trigger="serve")
        assert first_run.status == "succeeded", first_run.summary
        built = {o.key: o.status for o in first_run.outcomes}
        assert built == {console.base_key: "built", console.app_key: "built"}, built
        first = skopeo_inspect(f"{console.app_ref}:1-base1.36")["Digest"]

        # a changed build: the app's rebuild is a new generation, the first one superseded
        write_catalog(console.catalog.parent, console.upstream, 2)
        asked = http.post("/actions/rebuild", data={"key": console.app_key, "csrf": token})
        assert asked.status_code == 303
        second_run = wait_for_run(console, "alice", trigger="serve", after=first_run.id)
        assert second_run.status == "succeeded", second_run.summary
        assert {o.key: o.status for o in second_run.outcomes} == {
            console.base_key: "skipped",  # current: its parent is not rebuilt
            console.app_key: "built",
        }
        second = skopeo_inspect(f"{console.app_ref}:1-base1.36")["Digest"]
        assert second != first
        assert reads(f"{console.app_ref}@{first}"), "its signature tags still hold it"

        # the prune button: keep 1 deletes the first generation (and its signature), recorded
        bad = http.post("/actions/prune", data={"keep": "1", "older-than": "soon", "csrf": token})
        assert bad.status_code == 400 and "invalid duration 'soon'" in bad.text
        asked = http.post("/actions/prune", data={"keep": "1", "csrf": token})
        assert asked.status_code == 303
        pruned = wait_for_run(console, "alice", trigger="prune", after=second_run.id)
        assert pruned.status == "succeeded", pruned.summary
        assert pruned.summary.startswith("prune (keep 1): deleted "), pruned.summary
        assert "(1 generations)" in pruned.summary
        assert not reads(f"{console.app_ref}@{first}")
        assert reads(f"{console.app_ref}@{second}") and reads(f"{console.app_ref}:1")
        runs = http.get("/runs")
        pages.append(runs)
        assert runs.status_code == 200
        assert "serve (alice)" in runs.text and "prune (alice)" in runs.text
        run_page = http.get(f"/runs/{pruned.id}")
        pages.append(run_page)
        assert f"deleted: image {first}" in run_page.text, run_page.text

        out = http.post("/auth/logout", data={"csrf": token})
        assert out.status_code == 303
        assert "socle_session" not in http.cookies
        after = http.post("/actions/rebuild", data={"key": console.app_key, "csrf": token})
        assert after.status_code == 401
        pages.append(http.get("/"))
    assert_no_secret(console, dex, pages)


def test_a_user_outside_the_group_gets_403(setup: tuple[Console, Dex]) -> None:
    console, dex = setup
    with browser(console) as http:
        home = log_in(http, "bob@example.com")
        assert home.status_code == 200, home.text
        assert "bob" in home.text
        token = csrf_of(home)
        denied = http.post("/actions/rebuild", data={"key": console.app_key, "csrf": token})
        assert denied.status_code == 403
        assert "bob is not in the group 'socle-admins'" in denied.text
        prune = http.post("/actions/prune", data={"keep": "1", "csrf": token})
        assert prune.status_code == 403
    with browser(console) as http:
        carol = log_in(http, "carol@example.com")  # no groups claim at all
        denied = http.post("/actions/promote", data={"csrf": csrf_of(carol)})
        assert denied.status_code == 403
    assert_no_secret(console, dex, [home, carol, denied])


def test_no_session_gets_401_and_a_wrong_password_no_session(setup: tuple[Console, Dex]) -> None:
    console, _dex = setup
    with browser(console) as http:
        for path in ("/actions/rebuild", "/actions/promote", "/actions/prune"):
            answer = http.post(path, data={"key": console.app_key, "csrf": "x"})
            assert answer.status_code == 401, (path, answer.text)
        page = http.get("/auth/login", follow_redirects=True)
        refused = login_form(http, page, "alice@example.com", "wrong-pass")
        assert refused.status_code == 401 and shows_login_error(refused)  # Dex says no
        assert "/dex/" in str(refused.url)
        assert http.get("/").text.count('href="/auth/login"') >= 1
        answer = http.post("/actions/rebuild", data={"key": console.app_key, "csrf": "x"})
        assert answer.status_code == 401


def wait_for_run(
    console: Console, user: str, *, trigger: str, after: int = 0, timeout: float = 300
) -> RunView:
    """The first finished run by `user` after run `after`, read from the history database."""
    deadline = time.monotonic() + timeout
    with HistoryStore.open(console.db_url, migrate=False) as store:
        while time.monotonic() < deadline:
            for view in reversed(store.runs(limit=20)):
                if (
                    view.id > after
                    and view.user == user
                    and view.trigger == trigger
                    and view.finished_at is not None
                ):
                    full = store.run(view.id)
                    assert full is not None
                    return full
            if console.proc.poll() is not None:
                pytest.fail(f"socle serve exited:\n{console.log()}")
            time.sleep(0.5)
    pytest.fail(f"no finished run by {user} in {timeout} s:\n{console.log()[-3000:]}")


def reads(ref: str) -> bool:
    done = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


def assert_no_secret(console: Console, dex: Dex, pages: list[httpx.Response]) -> None:
    passwords = [password for password, *_ in USERS.values()] + [KEY_PASSWORD]
    texts = {f"page {p.request.method} {p.url.path}": p.text for p in pages}
    texts["serve log"] = console.log()
    for where, text in texts.items():
        assert CLIENT_SECRET not in text, where
        for password in passwords:
            assert password not in text, where
        # a JWT (ID or access token) starts with the base64 of '{"alg"' (eyJ...)
        assert not re.search(r"eyJ[A-Za-z0-9_-]{10,}\.", text), where
    assert dex.client_secret == CLIENT_SECRET
