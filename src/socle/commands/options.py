"""Options shared by several commands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from socle.builders import BUILDERS
from socle.core.catalog import Catalog
from socle.core.graph import Graph
from socle.validate import validate

F = TypeVar("F", bound=Callable[..., Any])


def catalog_options(func: F) -> F:
    """`-c FILE` and `--registry HOST` on every command that reads a catalog."""
    func = click.option(
        "--registry",
        envvar="SOCLE_REGISTRY",
        help="Registry host[:port] to use instead of the catalog's (env SOCLE_REGISTRY).",
    )(func)
    return click.option(
        "-c",
        "--catalog",
        "catalog_path",
        type=click.Path(path_type=Path, dir_okay=False),
        envvar="SOCLE_CATALOG",
        default="catalog.yaml",
        show_default=True,
        help="The catalog file (env SOCLE_CATALOG).",
    )(func)


def builder_option(func: F) -> F:
    return click.option(
        "--builder",
        type=click.Choice(sorted(BUILDERS)),
        default="buildah",
        show_default=True,
        envvar="SOCLE_BUILDER",
        help="Image builder (env SOCLE_BUILDER).",
    )(func)


def security_option(default: bool) -> Callable[[F], F]:
    def decorate(func: F) -> F:
        return click.option(
            "--security-updates/--no-security-updates",
            default=default,
            show_default=True,
            help="Check published OS images for pending security updates (runs apt's simulation).",
        )(func)

    return decorate


def open_catalog(catalog_path: Path, registry: str | None) -> tuple[Catalog, Graph]:
    return validate(catalog_path, registry=registry)


def verify_key_option(func: F) -> F:
    """`--key PUB` (env SOCLE_VERIFY_KEY): the key a deployed image's signature must verify with."""
    return click.option(
        "--key",
        "key_path",
        required=True,
        envvar="SOCLE_VERIFY_KEY",
        type=click.Path(path_type=Path, dir_okay=False),
        help="The public key the image's signature must verify with (env SOCLE_VERIFY_KEY).",
    )(func)


def deployments_option(func: F) -> F:
    """`--deployments DIR` (repeatable): rendered deployments whose pinned digests prune keeps."""
    return click.option(
        "--deployments",
        multiple=True,
        type=click.Path(path_type=Path, exists=True, file_okay=False),
        help="A folder of rendered deployments (`socle deploy render -o DIR`): every digest "
        "pinned in its files is kept by prune. Repeatable.",
    )(func)
