"""`socle deploy smoke --secret SECRET/KEY=VALUE`: the values a cluster's Secrets would give."""

from __future__ import annotations

import pytest

from socle.commands.deploy_smoke import secret_values
from socle.errors import InputError


def test_secret_values_are_keyed_by_secret_and_key() -> None:
    pairs = ("legacy-db/password=s3=cret", "api/token=")
    assert secret_values(pairs) == {"legacy-db/password": "s3=cret", "api/token": ""}


@pytest.mark.parametrize("pair", ["password=x", "legacy-db/password", "a/b/c=x"])
def test_a_malformed_secret_is_one_line(pair: str) -> None:
    with pytest.raises(InputError, match="is not SECRET/KEY=VALUE"):
        secret_values((pair,))
