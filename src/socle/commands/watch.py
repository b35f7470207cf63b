"""`socle watch`: rebuild what follows a pushed image, from registry notifications or polling."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import click

from socle.commands.build import fail_on, open_history, run_job
from socle.commands.options import builder_option, catalog_options, open_catalog
from socle.core.cascade import Pushed
from socle.errors import SocleError

log = logging.getLogger(__name__)


@click.command("watch")
@catalog_options
@builder_option
@click.option("--listen", metavar="127.0.0.1:PORT", help="Receive registry notifications here.")
@click.option(
    "--secret-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The shared secret the registry sends (Authorization: Bearer SECRET).",
)
@click.option(
    "--poll",
    type=click.FloatRange(min=1),
    metavar="SECONDS",
    help="Poll every catalog tag and upstream tag instead of listening.",
)
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=2, show_default=True)
@click.option(
    "--notify",
    "notify_url",
    envvar="SOCLE_NOTIFY_URL",
    metavar="URL",
    help="POST a Slack-compatible summary of each cascade here.",
)
def watch_cmd(
    catalog_path: Path,
    registry: str | None,
    builder: str,
    listen: str | None,
    secret_file: Path | None,
    poll: float | None,
    jobs: int,
    notify_url: str | None,
) -> None:
    """Start the cascade for a pushed image's children: one JSON line per event on stdout."""
    if bool(listen) == bool(poll):
        raise click.UsageError(
            "give exactly one of --listen ADDR (with --secret-file) or --poll SECONDS"
        )
    open_catalog(catalog_path, registry)  # fail now, not at the first push
    cascade = Cascade(catalog_path, registry, builder, jobs, notify_url)
    stop = threading.Event()
    if listen:
        from socle.watch.receiver import Receiver, read_secret

        if secret_file is None:
            raise click.UsageError("--listen needs --secret-file (the registry sends that secret)")
        with Receiver(listen, read_secret(secret_file), cascade) as receiver:
            click.echo(f"socle watch: listening on {receiver.url} for {catalog_path}", err=True)
            wait(stop)
    else:
        assert poll is not None
        poll_forever(cascade, poll, stop)


def wait(stop: threading.Event) -> None:
    """Until `stop` is set; Ctrl-C goes on up to the CLI, which says so and exits 130."""
    while not stop.wait(3600):
        pass


def poll_forever(cascade: Cascade, interval: float, stop: threading.Event) -> None:
    from socle.oci.reference import Reference
    from socle.registry.client import RegistryClient
    from socle.watch.poller import Poller

    catalog, graph = open_catalog(cascade.catalog_path, cascade.registry)
    refs = [Reference.parse(v.ref(catalog.registry)) for v in graph.variants]
    refs += [Reference.parse(f"{u.image}:{u.tag}") for _, _, u in catalog.upstreams()]
    with RegistryClient.from_config() as client:
        poller = Poller(client, refs, interval)
        click.echo(f"socle watch: polling {len(refs)} tags every {interval:g} s", err=True)
        poller.start(cascade)
        try:
            wait(stop)
        finally:
            poller.stop()


class Cascade:
    """What a push starts: the children of the pushed catalog image, and their subtrees."""

    def __init__(
        self,
        catalog_path: Path,
        registry: str | None,
        builder: str,
        jobs: int,
        notify_url: str | None,
    ) -> None:
        self.catalog_path = catalog_path
        self.registry = registry
        self.builder = builder
        self.jobs = jobs
        self.notify_url = notify_url

    def __call__(self, push: Pushed) -> None:
        try:
            self.follow(push)
        except SocleError as exc:  # a failed cascade must not stop the watcher
            click.echo(
                f"socle watch: cascade after {describe(push)} failed: {exc.message}", err=True
            )

    def follow(self, push: Pushed) -> None:
        from socle.core.cascade import followers
        from socle.job import BuildJob, JobSettings
        from socle.registry.state import RegistryState

        catalog, graph = open_catalog(
            self.catalog_path, self.registry
        )  # re-read: it may have changed
        found = followers(catalog, graph, push)
        for upstream in found.upstream:
            click.echo(
                f"socle watch: upstream {upstream} moved: run `socle pins update` and review",
                err=True,
            )
        if not found.children:
            click.echo(f"socle watch: {describe(push)}: no catalog image is built on it", err=True)
            return
        only = tuple(dict.fromkeys(c.key for c in found.children))
        click.echo(f"socle watch: {describe(push)}: cascading to {', '.join(only)}", err=True)
        settings = JobSettings(builder=self.builder, jobs=self.jobs, only=only)
        with RegistryState.from_config() as state:
            job = BuildJob(catalog, graph, state, settings)
            with open_history(None) as history:
                outcomes = run_job(
                    job, events="json", notify_url=self.notify_url, history=history, trigger="watch"
                )
            fail_on(outcomes)


def describe(push: Pushed) -> str:
    where = f"{push.registry}/" if push.registry else ""
    return f"push of {where}{push.repository}:{push.tag or push.digest}"


COMMANDS = [watch_cmd]
