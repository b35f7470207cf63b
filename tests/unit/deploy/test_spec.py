"""The deployment description's loader: the example loads, each bad input is one located line."""

from __future__ import annotations

from pathlib import Path

import pytest

from socle.core.catalog import Catalog
from socle.core.graph import Graph
from socle.deploy import spec as specs
from socle.errors import InputError
from socle.validate import validate

EXAMPLE = Path(__file__).parents[3] / "examples" / "enterprise" / "catalog.yaml"
GOOD = """\
image: legacy-app:1.0-tomcat10-java17-debian12
namespace: legacy
user: 100
ports:
  - {name: http, port: 8080}
config:
  /etc/app/app.properties: "a=1"
writable: [/var/tmp/app]
probes:
  readiness: {http: {path: /ready, port: http}}
"""


@pytest.fixture(scope="module")
def example() -> tuple[Catalog, Graph]:
    return validate(EXAMPLE)


def parse(text: str, graph: Graph) -> specs.Spec:
    return specs.parse(text, Path("deploy/app.yaml"), graph)


def errors(text: str, graph: Graph) -> list[str]:
    with pytest.raises(specs.SpecError) as caught:
        parse(text, graph)
    return caught.value.diagnostics().splitlines()


def test_the_example_loads_with_its_environments(example: tuple[Catalog, Graph]) -> None:
    catalog, graph = example
    assert specs.apps(catalog) == ["legacy-app"]
    spec = specs.load(catalog, graph, "legacy-app")
    assert spec.variant == "legacy-app:1.0-tomcat10-java17-debian12"
    assert spec.repository == "my/legacy-app"
    assert "/var/lib/tomcat10/work" in spec.writable
    assert set(spec.environments) == {"dev", "prod"}
    assert spec.user != 0


def test_an_unknown_app_lists_the_known_ones(example: tuple[Catalog, Graph]) -> None:
    catalog, graph = example
    with pytest.raises(InputError) as caught:
        specs.load(catalog, graph, "nope")
    assert caught.value.exit_code == 2
    assert "'nope'" in caught.value.message and "known: legacy-app" in caught.value.message


def test_a_good_description_parses(example: tuple[Catalog, Graph]) -> None:
    spec = parse(GOOD, example[1])
    assert spec.ports == (specs.Port("http", 8080),)
    assert spec.config[0].key == "etc_app_app.properties"
    assert spec.probes["readiness"].http_port == "http"
    assert spec.group == 100


@pytest.mark.parametrize(
    ("change", "line", "message"),
    [
        (("user: 100", "user: 0"), 3, "user must be a whole number 1 or more"),
        (("port: http}}", "port: admin}}"), 10, "'admin' is not a declared port"),
        (("writable: [/var/tmp/app]", "writable: [/etc/app]"), 8, "overlaps config file"),
        (
            ("writable: [/var/tmp/app]", "writable: [/var/tmp, /var/tmp/app]"),
            8,
            "overlaps writable",
        ),
        (("writable: [/var/tmp/app]", "writable: [var/tmp]"), 8, "must be an absolute path"),
        (("legacy-app:1.0-tomcat10-java17-debian12", "legacy-app:9"), 1, "no tag 'legacy-app:9'"),
        (("legacy-app:1.0-tomcat10-java17-debian12", "nginx:1"), 1, "no image 'nginx'"),
        (("namespace: legacy", "namespace: Legacy_NS"), 2, "is not a DNS label"),
        (("namespace: legacy", "namespcae: legacy"), 2, "did you mean 'namespace'"),
        (("port: 8080}", "port: 99999}"), 5, "from 1 to 65535"),
        (("{http: {path: /ready, port: http}}", "{}"), 10, "needs either http or command"),
    ],
)
def test_each_bad_input_is_one_located_line(
    example: tuple[Catalog, Graph], change: tuple[str, str], line: int, message: str
) -> None:
    found = errors(GOOD.replace(*change), example[1])
    assert any(f"deploy/app.yaml:{line}:" in e and message in e for e in found), found


def test_egress_and_ingress_rules_are_checked(example: tuple[Catalog, Graph]) -> None:
    text = GOOD + "ingress:\n  - {ports: [http]}\negress:\n  - {cidr: 10.0.0.300/8, port: 5432}\n"
    found = errors(text, example[1])
    assert any(":12:5: error: an ingress rule needs namespaces or pods" in e for e in found)
    assert any(":14:" in e and "not an IPv4 CIDR" in e for e in found)


def test_invalid_yaml_is_located(example: tuple[Catalog, Graph]) -> None:
    assert errors("image: [unclosed\n", example[1])[0].startswith("deploy/app.yaml:2:")
