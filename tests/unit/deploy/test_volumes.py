"""A writable path or config file on one of the image's VOLUME paths is refused at render."""

from __future__ import annotations

from pathlib import Path

import pytest

from socle.deploy import spec as specs
from socle.deploying import check_volumes, overlaps
from socle.errors import InputError
from socle.validate import validate

EXAMPLE = Path(__file__).parents[3] / "examples" / "enterprise" / "catalog.yaml"


@pytest.fixture(scope="module")
def legacy() -> specs.Spec:
    catalog, graph = validate(EXAMPLE)
    return specs.load(catalog, graph, "legacy-app")


def test_paths_overlap_when_equal_or_nested_either_way() -> None:
    assert overlaps("/var/log", "/var/log/")
    assert overlaps("/var/log/tomcat10", "/var/log")
    assert overlaps("/var", "/var/log")
    assert not overlaps("/var/logs", "/var/log")
    assert not overlaps("/tmp", "/var/tmp")


def test_volumes_elsewhere_are_fine(legacy: specs.Spec) -> None:
    check_volumes(legacy, ["/data", "/srv/uploads"])


def test_a_writable_path_on_a_volume_names_both(legacy: specs.Spec) -> None:
    writable = legacy.writable[0]
    with pytest.raises(InputError) as refused:
        check_volumes(legacy, [writable.rsplit("/", 1)[0] or "/"])
    assert refused.value.exit_code == 2
    assert f"writable path {writable} collides with the image's volume" in refused.value.message
    assert str(legacy.path) in refused.value.message


def test_a_config_file_inside_a_volume_is_refused(legacy: specs.Spec) -> None:
    assert legacy.config, "the example mounts a config file"
    target = legacy.config[0].path
    with pytest.raises(InputError, match=f"config file {target} collides"):
        check_volumes(legacy, [target.rsplit("/", 1)[0]])
