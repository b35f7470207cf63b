"""`socle deploy check DIR`: strict schemas, Pod Security restricted and digests, on any manifests."""

from __future__ import annotations

from pathlib import Path

import click

from socle.commands.options import catalog_options, open_catalog
from socle.errors import SocleError


@click.command("check")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option(
    "--k8s-version", "k8s_versions", multiple=True, metavar="1.N",
    help="Kubernetes version to validate against (repeatable); default 1.30 to the newest bundled.",
)  # fmt: skip
@click.option(
    "--app", help="Also check that every flow APP's description declares has its NetworkPolicy."
)
@catalog_options
def check_cmd(
    folder: Path,
    k8s_versions: tuple[str, ...],
    app: str | None,
    catalog_path: Path,
    registry: str | None,
) -> None:
    """Check every *.yaml/*.yml under FOLDER; one line per problem, exit 1 if any."""
    from socle.deploy import check

    versions = check.versions(k8s_versions)
    items = check.manifests(folder)
    findings = check.check(items, versions)
    if app is not None:
        from socle.deploy import spec
        from socle.deploy.flows import check_flows

        catalog, graph = open_catalog(catalog_path, registry)
        findings += check_flows(spec.load(catalog, graph, app), items)
    for finding in findings:
        click.echo(str(finding))
    summary = (
        f"{len(items)} objects in {folder}, Kubernetes {versions[0]}..{versions[-1]}: "
        f"{len(findings)} problem{'s' if len(findings) != 1 else ''}"
    )
    if findings:
        raise SocleError(summary)
    click.echo(summary)
