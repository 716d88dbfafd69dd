"""The README's component table states the same pins as the Pulumi program's config defaults."""

import re

import pytest

from devstack.runtime.paths import REPO_ROOT
from infra.config import KEYS_BY_NAME

README = (REPO_ROOT / "README.md").read_text()
PIN = re.compile(r"`(?P<key>[a-z]+:[A-Za-z]+)` = \[?(?P<value>[\w.\-]+)")
TABLE = README.split("## Components and pins", 1)[1].split("\n## ", 1)[0]
PINS = [(m["key"], m["value"]) for m in PIN.finditer(TABLE)]


def test_the_table_names_the_pins_of_every_versioned_component() -> None:
    keys = {key for key, _ in PINS}
    assert {"seldon:version", "kafka:version", "kafka:operatorChartVersion", "search:version"} <= keys
    assert {"search:operatorChartVersion", "objectstore:chartVersion", "workflows:chartVersion"} <= keys


@pytest.mark.parametrize(("key", "value"), PINS, ids=[key for key, _ in PINS])
def test_readme_pin_equals_the_config_default(key: str, value: str) -> None:
    assert key in KEYS_BY_NAME, f"README names {key}, which infra/config/keys.py does not declare"
    assert KEYS_BY_NAME[key].default == value, (
        f"README pins {key} = {value} but infra/config/keys.py defaults it to {KEYS_BY_NAME[key].default}"
    )


def test_default_seldon_is_the_last_apache_release() -> None:
    assert KEYS_BY_NAME["seldon:version"].default == "1.17.1"
