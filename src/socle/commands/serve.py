"""`socle serve`: the operations console over the history and the registry."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from socle.commands.options import builder_option, catalog_options, deployments_option, open_catalog
from socle.errors import InputError

if TYPE_CHECKING:
    from socle.serve.settings import OidcSettings


@click.command("serve")
@catalog_options
@builder_option
@click.option(
    "--listen",
    default="127.0.0.1:8080",
    show_default=True,
    metavar="HOST:PORT",
    help="Where to serve; a non-loopback address needs --public.",
)
@click.option(
    "--public", is_flag=True, help="Allow a non-loopback --listen address (behind your TLS proxy)."
)
@click.option(
    "--db",
    "db_url",
    envvar="SOCLE_DB",
    metavar="URL",
    help="The history database (default: SQLite in socle's data folder; env SOCLE_DB).",
)
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=2, show_default=True)
@click.option(
    "--sign-key",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="SOCLE_SIGNING_KEY",
    help="Sign what the console builds with this cosign key (passphrase: env SOCLE_PASSWORD).",
)
@click.option(
    "--key",
    "verify_key",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="SOCLE_VERIFY_KEY",
    help="The public key image pages check signatures with (default: the --sign-key's).",
)
@click.option(
    "--hook-secret-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Accept registry notifications on /hooks/registry with this shared secret.",
)
@click.option("--oidc-issuer", metavar="URL", help="OpenID Connect issuer for logins.")
@click.option("--oidc-client-id", metavar="ID", default="socle", show_default=True)
@click.option(
    "--oidc-client-secret-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The OIDC client secret.",
)
@click.option(
    "--oidc-group",
    metavar="GROUP",
    help="Members of this `groups` claim value may rebuild, promote and prune.",
)
@click.option(
    "--refresh",
    "refresh_seconds",
    type=click.FloatRange(min=1),
    default=60,
    show_default=True,
    help="Seconds between reads of the registry for the overview.",
)
@click.option(
    "--keep-runs",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Forget runs beyond the newest N.",
)
@deployments_option
def serve_cmd(
    catalog_path: Path,
    registry: str | None,
    builder: str,
    listen: str,
    public: bool,
    db_url: str | None,
    jobs: int,
    sign_key: Path | None,
    verify_key: Path | None,
    hook_secret_file: Path | None,
    oidc_issuer: str | None,
    oidc_client_id: str,
    oidc_client_secret_file: Path | None,
    oidc_group: str | None,
    refresh_seconds: float,
    keep_runs: int,
    deployments: tuple[Path, ...],
) -> None:
    """Serve the console: overview, lineage, images, runs, live runs, /metrics, webhooks.

    Read-only unless a user logs in through --oidc-issuer and belongs to --oidc-group.
    """
    import uvicorn

    from socle.history.store import HistoryStore, redact
    from socle.serve.app import create_app
    from socle.serve.console import Console
    from socle.serve.settings import ConsoleSettings, parse_listen

    host, port = parse_listen(listen, public=public)
    open_catalog(catalog_path, registry)  # fail now, with the catalog's own message
    oidc = _oidc(oidc_issuer, oidc_client_id, oidc_client_secret_file, oidc_group)
    hook_secret = None
    if hook_secret_file is not None:
        from socle.watch.receiver import read_secret

        hook_secret = read_secret(hook_secret_file)
    signing_key = public_key = None
    if sign_key is not None:
        from socle.commands.signing import read_signing_key

        signing_key = read_signing_key(sign_key)
        public_key = signing_key.public_key
    if verify_key is not None:
        from socle.commands.signing import read_public_key

        public_key = read_public_key(verify_key)
    settings = ConsoleSettings(
        catalog=catalog_path,
        registry=registry,
        host=host,
        port=port,
        public=public,
        db_url=db_url,
        builder=builder,
        jobs=jobs,
        sign_key=sign_key,
        verify_key=verify_key,
        hook_secret=hook_secret,
        oidc=oidc,
        refresh_seconds=refresh_seconds,
        keep_runs=keep_runs,
        deployments=deployments,
    )
    store = HistoryStore.open(db_url)
    console = Console(settings, store, signing_key=signing_key, verify_key=public_key)
    logging.getLogger("socle.serve.access").setLevel(logging.INFO)
    click.echo(
        f"socle serve: {settings.base_url} for {catalog_path} (history {redact(store.url)}"
        f"{'; read-only: no --oidc-issuer' if oidc is None else ''})",
        err=True,
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(console),
            host=host,
            port=port,
            access_log=False,  # socle.serve.access logs paths without their query strings
            log_level="warning",
            lifespan="on",
        )
    )
    try:
        server.run()
    finally:
        store.close()
    if not server.started:
        sys.exit(1)


def _oidc(
    issuer: str | None, client_id: str, secret_file: Path | None, group: str | None
) -> OidcSettings | None:
    from socle.serve.settings import OidcSettings

    if issuer is None:
        if secret_file is not None or group is not None:
            raise InputError("--oidc-client-secret-file and --oidc-group need --oidc-issuer")
        return None
    if secret_file is None or group is None:
        raise InputError(
            "--oidc-issuer needs --oidc-client-secret-file and --oidc-group",
            hint="write operations are allowed only to members of the group",
        )
    from socle.watch.receiver import read_secret

    return OidcSettings(issuer.rstrip("/"), client_id, read_secret(secret_file), group)


COMMANDS = [serve_cmd]
