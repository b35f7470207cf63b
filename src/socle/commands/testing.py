"""`socle test`: run an image's declared tests against its published image."""

from __future__ import annotations

from pathlib import Path

import click

from socle.commands.options import builder_option, catalog_options, open_catalog
from socle.errors import SocleError


@click.command("test")
@catalog_options
@builder_option
@click.argument("image")
@click.option(
    "--junit",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the results as JUnit XML here.",
)
def test_cmd(
    catalog_path: Path, registry: str | None, builder: str, image: str, junit: Path | None
) -> None:
    """Run the tests IMAGE declares (and inherits) against its published image, without network."""
    from socle.builders import BUILDERS
    from socle.gates import variant_tests
    from socle.imagetests import run_tests, to_junit_xml
    from socle.localimage import local_copy
    from socle.oci.layout import read_image_layout
    from socle.oci.reference import Reference
    from socle.registry.client import RegistryClient

    catalog, graph = open_catalog(catalog_path, registry)
    tool = BUILDERS[builder]()
    failed = 0
    suites = []
    with RegistryClient.from_config() as client:
        for variant in graph.select([image]):
            tests = variant_tests(variant)
            if not tests:
                click.echo(f"{variant.key}: no tests declared")
                continue
            ref = Reference.parse(variant.ref(catalog.registry))
            found = client.head_manifest(ref)
            if found is None:
                raise SocleError(f"{ref} is not published", hint="run `socle build` first")
            name = f"socle-test/{variant.image.name}:{variant.exact_tag}"
            with local_copy(client, tool, ref.with_digest(found.digest), name) as layout:
                report = run_tests(tool, name, read_image_layout(layout).config, tests)
            suites.append(to_junit_xml(report, variant.key))
            for result in report.results:
                mark = "ok" if result.passed else "FAIL"
                click.echo(
                    f"{variant.key}: {mark} {result.name}"
                    + ("" if result.passed else f": {result.message}")
                )
            click.echo(f"{variant.key}: {report.summary()}")
            failed += len(report.failed)
    if junit is not None and suites:
        junit.write_text(suites[0] if len(suites) == 1 else merge_suites(suites))
    if failed:
        raise SocleError(f"{failed} image test(s) failed")


def merge_suites(suites: list[str]) -> str:
    """Several JUnit <testsuite> documents as one <testsuites> document."""
    import xml.etree.ElementTree as ET

    root = ET.Element("testsuites")
    for text in suites:
        root.append(ET.fromstring(text))
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


COMMANDS = [test_cmd]
