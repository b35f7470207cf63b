"""Kill `socle build` at chosen points of a cascading rebuild; judge the registry after each.

Run: .venv/bin/python bench/chaos.py [--kills 20] [--builder buildah]   (or `make chaos`)

Setup: a registry of its own (socle's stack, on a free 127.0.0.1 port), a
catalog of 3 families with 2 variants each (os → java → app, busybox-based so a
build takes seconds), signing on, and generation 1 published. Each round then
changes the root (new upstream content, `socle pins update`), so the next build
cascades through every image, and SIGKILLs that build's whole process group at
one point, aimed with the executor's JSON events: during builds, gates, pushes,
signing, and inside the tag phase.

After every kill the registry alone is judged, with independent clients
(skopeo for tags and manifests, cosign for signatures):
  (a) within each family, the floating tags all point to the old generation or
      all to the new one; a family caught between two PUTs counts as a
      violation unless its pending move record in `<namespace>/socle-moves`
      names the moves (socle then completes it first on the next run);
  (b) each floating tag points to its owner's old digest or to its owner's new
      exact tag, never to another variant's image;
  (c) no tag points to a manifest with missing blobs, or to an unsigned image.
Then the rerun must complete: every floating tag where its owner's exact tag
points, everything signed, and a plan with 0 builds and no half-moved family.

Prints one line per kill, then `N kills, M invariant violations`.
Exit status: 0 when there were no violations, 1 otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from socle import stack  # noqa: E402
from tests.integration.images import write_busybox_layout  # noqa: E402

COSIGN = ROOT / ".tools" / "bin" / "cosign"
PASSWORD = "chaos"
OS_VERSIONS = ("1.36.1", "1.37.0")
FAMILIES = ("os", "java", "app")


@dataclass(frozen=True)
class Target:
    """Kill at the `nth` event (1-based) that `matches`; `phase` says where that is."""

    phase: str
    nth: int
    matches: Callable[[dict[str, Any]], bool]


def status(name: str, key: str = "", message: str = "") -> Callable[[dict[str, Any]], bool]:
    def matches(event: dict[str, Any]) -> bool:
        return (
            event.get("event.action") == name
            and str(event.get("socle.key") or "").startswith(key)
            and str(event.get("message") or "").startswith(message)
        )

    return matches


def layout_push(event: dict[str, Any]) -> bool:
    return event.get("event.action") == "pushing" and not event.get("message")


# Twenty points spread over one cascade (6 variants: 2 copied, 4 built, 26 tags).
TARGETS = [
    Target("build: the first copy", 1, status("building", "os:")),
    Target("push: copying an upstream", 2, status("pushing", "os:", "copying")),
    Target("gate: tests of an OS image", 1, status("testing", "os:", "tests")),
    Target("build: java starts", 1, status("building", "java:")),
    Target("gate: java's SBOM", 1, status("testing", "java:", "sbom")),
    Target("push: java's layout", 1, layout_push),
    Target("signing: the first image", 1, status("pushing", "", "signature")),
    Target("build: the second image built", 2, status("built")),
    Target("build: app starts", 1, status("building", "app:")),
    Target("signing: the third image", 3, status("pushing", "", "signature")),
    Target("gate: the scan of app", 1, status("testing", "app:", "scan")),
    Target("push: the third layout", 3, layout_push),
    Target("signing: the fifth image", 5, status("pushing", "", "signature")),
    Target("build: the fifth image built", 5, status("built")),
    Target("tags: the tag phase starts", 1, status("tagging")),
    Target("tags: after the first variant's moves", 1, status("tagged")),
    Target("tags: after the second variant's moves", 2, status("tagged")),
    Target("tags: after the third variant's moves", 3, status("tagged")),
    Target("tags: after the fourth variant's moves", 4, status("tagged")),
    Target("tags: after the fifth variant's moves", 5, status("tagged")),
]


@dataclass
class Kill:
    """One round: where the kill landed and what the judges found."""

    target: Target
    landed: str = ""  # the last event before the kill
    killed: bool = False
    half_moved: list[str] = field(default_factory=list)  # families caught mid-move, recorded
    violations: list[str] = field(default_factory=list)
    seconds: float = 0.0


class Chaos:
    """The factory under test: a registry, a catalog, a key, and the judges."""

    def __init__(self, root: Path, *, builder: str = "buildah") -> None:
        self.root = root
        self.builder = builder
        self.paths = stack.StackPaths(root / "stack")
        self.host = f"127.0.0.1:{free_port()}"
        self.catalog = root / "catalog.yaml"
        self.key = root / "keys" / "chaos"
        self.generation = 0
        self.verified: set[str] = set()  # digests whose blobs and signature were checked
        self.env = {
            **os.environ,
            "SOCLE_PASSWORD": PASSWORD,
            "XDG_DATA_HOME": str(root / "data"),
            "XDG_CACHE_HOME": str(root / "cache"),
        }

    # -- setup --------------------------------------------------------------------------

    def start(self) -> None:
        for line in stack.up(self.paths, registry_addr=self.host, docker=False):
            log(line)
        self.write_catalog()
        self.key.parent.mkdir(parents=True, exist_ok=True)
        self.socle("keygen", "--out", str(self.key))
        self.new_generation()
        self.build_to_completion()

    def stop(self) -> None:
        stack.down(self.paths)

    def write_catalog(self) -> None:
        for name in ("java", "app"):
            (self.root / name).mkdir(exist_ok=True)
            (self.root / name / "Dockerfile").write_text(
                f"ARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\nRUN echo {name} > /{name}\n"
            )
        self.catalog.write_text(
            textwrap.dedent(
                f"""\
                registry: {self.host}
                namespace: chaos
                images:
                  os:
                    upstream: {self.host}/chaos-up/os
                    versions: {json.dumps(list(OS_VERSIONS))}
                  java:
                    parents: [os]
                    default_parent: os:{OS_VERSIONS[-1]}
                    aliases: [latest]
                    versions: ["17"]
                  app:
                    parents: [java]
                    default_parent: java:17-os{OS_VERSIONS[-1]}
                    versions: ["1.0"]
                """
            )
        )

    def new_generation(self) -> None:
        """New upstream content under both OS tags, pinned: the next build cascades."""
        self.generation += 1
        for version in OS_VERSIONS:
            layout = self.root / "upstream" / f"{self.generation}-{version}"
            marker = f"generation {self.generation} of os {version}\n".encode()
            write_busybox_layout(layout, extra={"etc/generation": marker})
            ref = f"{self.host}/chaos-up/os:{version}"
            run(["skopeo", "copy", "-q", "--dest-tls-verify=false", f"oci:{layout}", f"docker://{ref}"])
        self.socle("pins", "update", "-c", str(self.catalog))

    # -- running socle ------------------------------------------------------------------

    def socle(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "socle", *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.root,
            check=False,
            timeout=900,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"socle {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
        return done

    def build_args(self) -> list[str]:
        return [
            sys.executable, "-m", "socle", "build", "-c", str(self.catalog),
            "--builder", self.builder, "--sign-key", f"{self.key}.key",
            "--events", "json", "-j", "2",
        ]  # fmt: skip

    def build_to_completion(self) -> None:
        done = subprocess.run(
            self.build_args(), capture_output=True, text=True, env=self.env, cwd=self.root,
            check=False, timeout=900,
        )  # fmt: skip
        if done.returncode != 0:
            failures = [
                describe(e)
                for e in map(json.loads, done.stdout.splitlines())
                if e["event.action"] == "failed"
            ]
            detail = "\n".join(failures)[-3000:]
            raise RuntimeError(f"socle build exited {done.returncode}: {done.stderr}\n{detail}")

    def build_and_kill(self, target: Target) -> Kill:
        """Start a build, SIGKILL its process group at `target`; return where it landed."""
        kill = Kill(target)
        proc = subprocess.Popen(
            self.build_args(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env=self.env, cwd=self.root, start_new_session=True,
        )  # fmt: skip
        assert proc.stdout is not None
        seen = 0
        for line in proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if target.matches(event):
                seen += 1
                if seen == target.nth:
                    os.killpg(proc.pid, signal.SIGKILL)
                    kill.killed = True
                    kill.landed = describe(event)
                    break
        proc.wait(timeout=900)
        proc.stdout.close()
        return kill

    # -- the judges ---------------------------------------------------------------------

    def owners(self) -> list[dict[str, Any]]:
        """The plan's variants: name, variant key and refs (the exact tag first)."""
        plan = json.loads(self.socle("plan", "-c", str(self.catalog), "--json").stdout)
        return list(plan["images"])

    def digest_of(self, ref: str) -> str | None:
        """What `ref` points at, by skopeo; None when the tag does not exist."""
        found = subprocess.run(
            ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
            capture_output=True, check=False, timeout=60,
        )  # fmt: skip
        if found.returncode != 0:
            if b"manifest unknown" in found.stderr or b"not found" in found.stderr.lower():
                return None
            raise RuntimeError(f"skopeo inspect {ref}: {found.stderr.decode(errors='replace')}")
        return "sha256:" + hashlib.sha256(found.stdout).hexdigest()

    def snapshot(self) -> dict[str, str | None]:
        """Every tag of the catalog and the digest it points at now."""
        return {ref: self.digest_of(ref) for item in self.owners() for ref in item["refs"]}

    def sound(self, ref: str, digest: str) -> list[str]:
        """(c): the image's blobs are all there (skopeo copies it) and cosign verifies it."""
        if digest in self.verified:
            return []
        problems = []
        pinned = f"{ref.rsplit(':', 1)[0]}@{digest}"
        with tempfile.TemporaryDirectory(prefix="chaos-copy-") as tmp:
            copied = subprocess.run(
                ["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{pinned}", f"dir:{tmp}"],
                capture_output=True, text=True, check=False, timeout=120,
            )  # fmt: skip
        if copied.returncode != 0:
            problems.append(f"{ref} -> {digest[:19]}: blobs missing ({copied.stderr.strip()[:200]})")
        verified = subprocess.run(
            [str(COSIGN), "verify", "--key", f"{self.key}.pub", "--insecure-ignore-tlog",
             "--allow-http-registry", "--allow-insecure-registry", "--output", "json", pinned],
            capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
        if verified.returncode != 0:
            detail = (verified.stderr.strip().splitlines() or [""])[-1]
            problems.append(f"{ref} -> {digest[:19]}: cosign verify refuses: {detail}")
        if not problems:
            self.verified.add(digest)
        return problems

    def pending_record(self, repository: str) -> set[str]:
        """Tags a pending move record names for `repository` (read with skopeo)."""
        ref = f"{self.host}/chaos/socle-moves:{repository.replace('/', '--')}"
        found = subprocess.run(
            ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
            capture_output=True, check=False, timeout=60,
        )  # fmt: skip
        if found.returncode != 0:
            return set()
        annotations = json.loads(found.stdout).get("annotations", {})
        if annotations.get("dev.socle.moves.state") != "pending":
            return set()
        return {m["tag"] for m in json.loads(annotations["dev.socle.moves"])}

    def judge(
        self, before: dict[str, str | None], owners: list[dict[str, Any]], kill: Kill
    ) -> None:
        """(a), (b) and (c) after a kill, against `before` (the last complete generation)."""
        now = self.snapshot()
        for family in FAMILIES:
            items = [i for i in owners if i["name"] == family]
            old_new: dict[str, str] = {}
            for item in items:
                exact, *floating = item["refs"]
                old = before[exact]
                new = now[exact] if now[exact] != old else None
                for ref in floating:
                    found = now[ref]
                    if found == old:
                        old_new[ref] = "old"
                    elif new is not None and found == new:
                        old_new[ref] = "new"
                    else:
                        kill.violations.append(
                            f"(b) {ref} -> {found}: neither {item['variant']}'s old digest "
                            f"{old} nor its new exact tag {new}"
                        )
            sides = set(old_new.values())
            if len(sides) > 1:
                repository = f"chaos/{family}"
                recorded = self.pending_record(repository)
                moved = {ref.rsplit(":", 1)[1] for ref, side in old_new.items() if side == "new"}
                if moved <= recorded:
                    kill.half_moved.append(family)
                else:
                    kill.violations.append(
                        f"(a) {family} is mixed (new: {sorted(moved)}) and no pending record "
                        "names those moves"
                    )
        for ref, digest in now.items():
            if digest is not None:
                kill.violations.extend(f"(c) {p}" for p in self.sound(ref, digest))

    def judge_complete(self, kill: Kill) -> None:
        """After the rerun: every floating tag on its owner's exact digest, 0 builds, no record."""
        owners = self.owners()
        now = self.snapshot()
        for item in owners:
            exact, *floating = item["refs"]
            for ref in floating:
                if now[ref] != now[exact]:
                    kill.violations.append(f"after rerun: {ref} -> {now[ref]}, not {now[exact]}")
        builds = [i["variant"] for i in owners if i["action"] != "skip"]
        if builds:
            kill.violations.append(f"after rerun: the plan still builds {builds}")
        plan = json.loads(self.socle("plan", "-c", str(self.catalog), "--json").stdout)
        if plan.get("interrupted"):
            kill.violations.append(f"after rerun: half-moved families remain {plan['interrupted']}")
        for ref, digest in now.items():
            if digest is not None:
                kill.violations.extend(f"after rerun: (c) {p}" for p in self.sound(ref, digest))

    def round(self, target: Target) -> Kill:
        """One generation: change the root, kill the build at `target`, judge, rerun, judge."""
        started = time.monotonic()
        before = self.snapshot()
        self.new_generation()
        owners = self.owners()
        kill = self.build_and_kill(target)
        self.judge(before, owners, kill)
        self.build_to_completion()
        self.judge_complete(kill)
        kill.seconds = time.monotonic() - started
        return kill


def describe(event: dict[str, Any]) -> str:
    keys = ("event.action", "socle.key", "message")  # ECS names: docs/cascade.md
    return " ".join(str(event[k]) for k in keys if event.get(k))


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(command: list[str]) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=300)


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def campaign(root: Path, targets: list[Target], *, builder: str) -> list[Kill]:
    """Set up, run one round per target, tear down; print one line per kill."""
    chaos = Chaos(root, builder=builder)
    try:
        started = time.monotonic()
        chaos.start()
        log(f"generation 1 published in {time.monotonic() - started:.1f} s")
        kills = []
        for number, target in enumerate(targets, 1):
            kill = chaos.round(target)
            kills.append(kill)
            where = kill.landed if kill.killed else "MISSED: the run ended first"
            extra = f"; half-moved and recorded: {', '.join(kill.half_moved)}" if kill.half_moved else ""
            print(
                f"kill {number:2}/{len(targets)} [{target.phase}] at `{where}`: "
                f"{len(kill.violations)} violation(s){extra} ({kill.seconds:.1f} s)",
                flush=True,
            )
            for violation in kill.violations:
                print(f"    {violation}", flush=True)
        return kills
    finally:
        chaos.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=len(TARGETS), help="how many kill points")
    parser.add_argument("--phase", help="only the kill points of this phase (build, push, gate, signing, tags)")
    parser.add_argument("--builder", default="buildah", choices=["buildah", "docker"])
    parser.add_argument("--keep", type=Path, help="work here and keep it (default: a temp folder)")
    args = parser.parse_args()
    if not COSIGN.exists():
        print(f"error: {COSIGN} is missing: run `make tools`", file=sys.stderr)
        return 2
    pool = [t for t in TARGETS if args.phase is None or t.phase.startswith(args.phase + ":")]
    count = min(args.kills, len(pool))
    targets = [pool[i * len(pool) // count] for i in range(count)]
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        kills = campaign(args.keep, targets, builder=args.builder)
    else:
        with tempfile.TemporaryDirectory(prefix="socle-chaos-") as tmp:
            kills = campaign(Path(tmp), targets, builder=args.builder)
    landed = sum(1 for k in kills if k.killed)
    violations = sum(len(k.violations) for k in kills)
    half = sum(len(k.half_moved) for k in kills)
    print(
        f"{landed} kills, {violations} invariant violations "
        f"({half} half-moved families found recorded and completed by the rerun; "
        f"{len(kills) - landed} kill points missed)"
    )
    return 0 if violations == 0 and landed == len(kills) else 1


if __name__ == "__main__":
    sys.exit(main())
