"""`socle sbom` and `socle scan`: inventory and scan an image in the registry.

Both fetch the image by reference into a temporary OCI layout (nothing runs).
`scan` exits 1 through a :class:`~socle.errors.SocleError` when the gate
fails, so the CLI's one error path reports it; it never calls `sys.exit`.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import click
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from socle.core.loader import not_utf8, yaml_problem
from socle.core.nodes import LOADER, Reader
from socle.core.policy import Policy, Verdict, evaluate, parse_policy
from socle.errors import CatalogError, GateFailed, InputError
from socle.localimage import DEFAULT_PLATFORM, PulledImage, pull_layout
from socle.oci.reference import Reference
from socle.registry.client import RegistryClient
from socle.sbom import Inventory, inventory, to_cyclonedx
from socle.scan import SCANNERS, ScanReport, ScanSettings, ScanTarget, Severity
from socle.scan.tracker import SOURCE_ENV

SEVERITY_STYLE = {
    Severity.CRITICAL: "bold red",
    Severity.HIGH: "red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
}



@contextmanager
def fetched(ref_text: str, platform: str) -> Iterator[tuple[PulledImage, Inventory]]:
    """The image at `ref_text` in a temporary layout, with its inventory."""
    ref = Reference.parse(ref_text)
    with tempfile.TemporaryDirectory(prefix="socle-scan-") as tmp:
        with RegistryClient.from_config() as client:
            pulled = pull_layout(client, ref, Path(tmp) / "image", platform=platform)
        yield pulled, inventory(pulled.layout)


platform_option = click.option(
    "--platform",
    default=DEFAULT_PLATFORM,
    show_default=True,
    help="OS/ARCH to pick when REF is a multi-platform index.",
)


@click.command("sbom")
@click.argument("ref")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the SBOM to FILE instead of standard output.",
)
@platform_option
def sbom_cmd(ref: str, output: Path | None, platform: str) -> None:
    """Print the CycloneDX SBOM of the image REF, read from its layers (nothing runs)."""
    with fetched(ref, platform) as (pulled, found):
        document = to_cyclonedx(found, ref, pulled.digest)
    if output is None:
        click.echo(document)
        return
    output.write_text(document + "\n")
    click.echo(f"{output}: {len(found.packages)} packages of {ref}@{pulled.digest}", err=True)


@click.command("scan")
@click.argument("ref")
@click.option(
    "--db",
    metavar="FILE|URL",
    envvar=SOURCE_ENV,
    help=f"Debian Security Tracker JSON: a file, file:// or http(s) URL (env {SOURCE_ENV}).",
)
@click.option(
    "--scanner",
    type=click.Choice(sorted(SCANNERS)),
    default="debian",
    show_default=True,
    envvar="SOCLE_SCANNER",
)
@click.option(
    "--fail-on",
    type=click.Choice([s.value for s in Severity], case_sensitive=False),
    help="Exit 1 when a finding of this severity or worse is not allowlisted.",
)
@click.option(
    "--policy",
    "policy_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="A YAML file holding a policy (as under the catalog's `policy:`) to gate on.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@platform_option
def scan_cmd(
    ref: str,
    db: str | None,
    scanner: str,
    fail_on: str | None,
    policy_file: Path | None,
    as_json: bool,
    platform: str,
) -> None:
    """Scan the image REF for known vulnerabilities; gate on --fail-on and --policy."""
    policy = load_policy(policy_file) if policy_file else None
    chosen = SCANNERS[scanner](ScanSettings(db=db))  # bad settings fail before any download
    with fetched(ref, platform) as (pulled, found):
        report = chosen.scan(ScanTarget(ref, pulled.digest, pulled.layout, found))
    verdict = gate(report, policy, Severity(fail_on.lower()) if fail_on else None)
    if as_json:
        click.echo(json.dumps(report_json(report, verdict), indent=2))
    else:
        show(report, verdict)
    if verdict is not None and not verdict.allowed:
        cves = ", ".join(sorted({f.cve for f in verdict.blocking}))
        raise GateFailed(
            f"{ref} fails the gate: {len(verdict.blocking)} blocking finding(s): {cves}",
            hint="upgrade the packages, or allowlist the CVE with a reason, an owner and an expiry",
        )


def load_policy(path: Path) -> Policy:
    """The policy in a YAML file; :class:`CatalogError` listing located problems."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read the policy {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise CatalogError([not_utf8(path, exc)]) from None
    try:
        root = yaml.compose(text, Loader=LOADER)
    except yaml.YAMLError as exc:
        raise CatalogError([yaml_problem(path, text, exc)]) from None
    reader = Reader(str(path))
    if root is None:
        raise InputError(f"the policy file {path} is empty")
    policy = parse_policy(reader, root)
    if reader.problems:
        raise CatalogError(reader.problems)
    return policy


def gate(report: ScanReport, policy: Policy | None, fail_on: Severity | None) -> Verdict | None:
    """The verdict of `policy` with `--fail-on` as its threshold; None when neither is given."""
    if policy is None and fail_on is None:
        return None
    return evaluate(policy or Policy(), report, date.today(), fail_on=fail_on)


def report_json(report: ScanReport, verdict: Verdict | None) -> dict[str, object]:
    """The report, and the verdict when there is one, as JSON values."""
    doc: dict[str, object] = report.to_json()
    if verdict is not None:
        doc["verdict"] = {
            "allowed": verdict.allowed,
            "blocking": [f.cve for f in verdict.blocking],
            "allowlisted": [f.cve for f in verdict.allowlisted],
            "expired": [
                {"cve": e.cve, "owner": e.owner, "expires": e.expires.isoformat()}
                for e in verdict.expired
            ],
            "reasons": verdict.explain(),
        }
    return doc


def show(report: ScanReport, verdict: Verdict | None, console: Console | None = None) -> None:
    """The findings as a table, the data's date, warnings, then the verdict."""
    console = console or Console()
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    dated = f"{report.database_date:%Y-%m-%d %H:%M} UTC" if report.database_date else "unknown"
    console.print(f"{escape(report.image)}@{report.digest}")
    console.print(f"data: {escape(report.database)}, as of {dated}")
    blocking = set(verdict.blocking) if verdict else set()
    allowlisted = set(verdict.allowlisted) if verdict else set()
    table = Table(show_edge=False, pad_edge=False)
    for column in ("severity", "cve", "package"):
        table.add_column(column, no_wrap=True)
    for column in ("installed", "fix"):
        table.add_column(column, overflow="fold")  # versions stay whole, folded if need be
    if verdict is not None:
        table.add_column("gate", no_wrap=True)
    for f in report.findings:
        style = SEVERITY_STYLE.get(f.severity, "dim")
        cells = [
            f"[{style}]{f.severity.value}[/]",
            f.cve,
            f.package,
            f.installed,
            f.fixed_version or f"({f.status.value})",
        ]
        if verdict is not None:
            mark = "[bold red]BLOCK[/]" if f in blocking else "allow" if f in allowlisted else ""
            cells.append(mark)
        table.add_row(*cells)
    if report.findings:
        console.print(table)
    counts = ", ".join(f"{n} {s.value}" for s, n in report.counts().items()) or "no findings"
    console.print(f"{len(report.findings)} findings: {counts}")
    if verdict is not None:
        _show_verdict(verdict, console)


def _show_verdict(verdict: Verdict, console: Console) -> None:
    for line in verdict.explain():
        console.print(f"[red]gate:[/] {escape(line)}")
    if verdict.allowed:
        allowlisted = f" ({len(verdict.allowlisted)} allowlisted)" if verdict.allowlisted else ""
        console.print(f"[green]gate: passed[/]{allowlisted}")


COMMANDS = (sbom_cmd, scan_cmd)
