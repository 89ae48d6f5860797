"""Config errors: one line naming the key, against the pipeline's real schema."""

import pytest
import yaml

from conftest import REPO
from seq2seq.configcheck import config_error, load_schema

SCHEMA = load_schema(REPO / "workflow" / "schemas" / "config.schema.yaml")


def test_the_shipped_config_is_valid():
    config = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    assert config_error(config, SCHEMA) is None


@pytest.mark.parametrize(("config", "expected"), [
    ({"training": {"epoch": 10}}, "config: training: Additional properties are not allowed ('epoch' was unexpected)"),
    ({"model": {}}, "config: (top level): Additional properties are not allowed ('model' was unexpected)"),
    ({"training": {"epochs": 0}}, "config: training.epochs: 0 is less than the minimum of 1"),
    ({"corpora": {"fra-eng": {"member": "x"}}}, "config: corpora.fra-eng: 'url' is a required property"),
    ({"models": {"a": {"attention": "luong", "training": {"batch_size": "big"}}}},
     "config: models.a.training.batch_size: 'big' is not of type 'integer'"),
])
def test_one_line_naming_the_key(config, expected):
    assert config_error(config, SCHEMA) == expected
