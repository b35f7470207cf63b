"""`socle deploy smoke APP`: the verified image under Docker Engine, exactly as its pod spec."""

from __future__ import annotations

from pathlib import Path

import click

from socle import deploying
from socle.commands.options import catalog_options, open_catalog, verify_key_option
from socle.commands.signing import open_client, read_public_key
from socle.deploy import render
from socle.deploy import spec as specs
from socle.deploy.podrun import SECRET_PLACEHOLDER, pod_run
from socle.deploy.smoke import smoke
from socle.errors import GateFailed, InputError


@click.command("smoke")
@catalog_options
@click.argument("app")
@click.option("--env", "env", help="Run this environment's pod spec (its env and limits).")
@click.option(
    "--timeout", type=click.FloatRange(min=1), default=180.0, show_default=True,
    help="Seconds the probes have to pass, in all.",
)  # fmt: skip
@verify_key_option
@click.option(
    "--secret", "secrets", multiple=True, metavar="SECRET/KEY=VALUE",
    help="A value for a Secret the pod reads (default: a placeholder, listed in the report).",
)  # fmt: skip
def smoke_cmd(
    catalog_path: Path,
    registry: str | None,
    app: str,
    env: str | None,
    timeout: float,
    key_path: Path,
    secrets: tuple[str, ...],
) -> None:
    """Run APP's pinned image as its pod spec says, with no network, until its probes pass.

    The user, read-only root, dropped capabilities, no-new-privileges, a tmpfs
    per emptyDir, env, config files and limits come from the rendered
    Deployment; a field Docker cannot reproduce is refused. Probes are reached
    inside the container's own network namespace. The container is removed.
    """
    catalog, graph = open_catalog(catalog_path, registry)
    spec = specs.load(catalog, graph, app)
    public_key = read_public_key(key_path)
    with open_client() as client:
        image = deploying.trusted_image(spec, catalog, public_key, client=client)
    pod = pod_run(render.objects(spec, image.ref, env), spec.app, secret_values(secrets))
    click.echo(f"smoke-running {image.tag_ref} -> {image.ref}", err=True)
    for ref in pod.placeholders:
        click.echo(f"  Secret {ref}: {SECRET_PLACEHOLDER!r} (pass --secret {ref}=VALUE)", err=True)
    result = smoke(pod, timeout=timeout)
    if result.log_tail:
        click.echo("\n".join(f"  | {line}" for line in result.log_tail.splitlines()), err=True)
    if not result.passed:
        raise GateFailed(
            f"{app} failed its smoke run after {result.seconds:.0f} s: {result.detail}",
            hint="the log tail above is the container's; fix the image or the description",
        )
    click.echo(f"{app}: {result.detail} ({result.seconds:.0f} s)")


def secret_values(pairs: tuple[str, ...]) -> dict[str, str]:
    """`--secret SECRET/KEY=VALUE` options as {"SECRET/KEY": VALUE}."""
    values: dict[str, str] = {}
    for pair in pairs:
        ref, sep, value = pair.partition("=")
        if not sep or ref.count("/") != 1:
            raise InputError(f"--secret {pair!r} is not SECRET/KEY=VALUE")
        values[ref] = value
    return values
