"""The pipeline's settings: one line naming the key, defaults owned by the schema alone, checks at start."""

import copy
from dataclasses import fields

import pytest
import yaml

from helpers import REPO
from seq2seq.models.gru_config import GRUConfig
from seq2seq.runs import check_config, pipeline_config
from seq2seq.schema import (
    SCHEMA_PATH,
    ConfigError,
    check_yaml,
    deep_merge,
    key_origin,
    load_schema,
    schema_default,
    schema_error,
)
from seq2seq.settings import PrepareSettings, TrainConfig, training_settings


def shipped_config() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))


def test_the_shipped_config_is_valid():
    assert schema_error(shipped_config()) is None
    check_config(shipped_config())


SHIPPED_OVERRIDES = [*sorted((REPO / "workflow" / "configs").glob("*.yaml")),
                     *sorted((REPO / "workflow" / "benchmarks" / "recipes").glob("*.yaml"))]


@pytest.mark.parametrize("override", SHIPPED_OVERRIDES, ids=lambda path: path.name)
def test_every_shipped_override_is_valid_on_top_of_the_shipped_config(override):
    merged = deep_merge(shipped_config(), yaml.safe_load(override.read_text()))
    check_config(merged)


@pytest.mark.parametrize(("config", "expected"), [
    ({"training": {"epoch": 10}}, "config: training: Additional properties are not allowed ('epoch' was unexpected)"),
    ({"model": {}}, "config: (top level): Additional properties are not allowed ('model' was unexpected)"),
    ({"training": {"epochs": 0}}, "config: training.epochs: 0 is less than the minimum of 1"),
    ({"corpora": {"spa-eng": {"member": "x"}}}, "config: corpora.spa-eng: 'url' is a required property"),
    ({"models": {"a": {"attention": "luong", "training": {"batch_size": "big"}}}},
     "config: models.a.training.batch_size: 'big' is not of type 'integer'"),
    # numpy's generator takes no negative seed (found only at the summary, after every training, before)
    ({"compare": {"seed": -1}}, "config: compare.seed: -1 is less than the minimum of 0"),
    ({"evaluation": {"seed": -1}}, "config: evaluation.seed: -1 is less than the minimum of 0"),
    ({"evaluation": {"length_penalty": 500}},  # ((5 + 30) / 6) ** 500 overflowed beam search after greedy
     "config: evaluation.length_penalty: 500 is greater than the maximum of 10"),
    # an empty list of members' seeds is no ensemble (it read as "all seeds" before)
    ({"ensembles": {"e": {"models": ["bahdanau"], "seeds": []}}}, "config: ensembles.e.seeds: [] should be non-empty"),
])
def test_one_line_naming_the_key(config, expected):
    assert schema_error(deep_merge(shipped_config(), config)) == expected


@pytest.mark.parametrize(("override", "start"), [
    ({"training": {"epochs": "ten"}}, "config: training.epochs: 'ten' is not of type 'integer'"),
    ({"trainig": {"epochs": 3}}, "config: (top level): Additional properties are not allowed ('trainig' was"),
    ({"models": {"m": {"attention": "cosine"}}}, "config: models.m.attention: 'cosine' is not one of"),
    ({"prepare": {"split": {"test": 0}}}, "config: prepare.split.test: 0 is less than or equal to the minimum"),
])
def test_check_config_stops_at_a_bad_override_naming_the_key(override, start):
    """What Snakemake shows for an override file (test_workflow_data.py runs two of these end to end)."""
    with pytest.raises(ConfigError) as caught:
        check_config(deep_merge(shipped_config(), override))
    assert str(caught.value).startswith(start), caught.value
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("message", "key"), [
    ("config: training.epochs: 0 is less than the minimum of 1", "training.epochs"),
    ("config: (top level): Additional properties are not allowed ('trainig' was unexpected)", "trainig"),
    ("config: training: Additional properties are not allowed ('epoch', 'lr' were unexpected)", "training.epoch"),
    ("config: models.h256.d2: tie_embeddings needs embedding_size == hidden_size", "models.h256.d2"),
    ("config: (top level): 'pairs' is a required property", None),
    ("config: pairs: 'spa-eng' has no entry in corpora (known corpora: fra-eng)", "pairs"),
    ("config: corpora.deu-eng: source_column and target_column are both 2", "corpora.deu-eng"),
])
def test_a_config_error_knows_the_key_it_names(message, key):
    assert ConfigError(message).key == key


def test_a_key_comes_from_the_last_file_that_sets_it_or_from_the_command_line(tmp_path):
    base = tmp_path / "config.yaml"
    base.write_text("pairs: [fra-eng]\ntraining:\n  epochs: 15\n  learning_rate: 0.003\n")
    override = tmp_path / "override.yaml"
    override.write_text("# a comment\ntraining: {epochs: 0}\nmodels:\n  h256.d2:\n    hidden_size: big\n")
    files = [base, override]
    assert key_origin("training.epochs", files) == f"{override}:2"  # the later file wins, as in the merge
    assert key_origin("training.learning_rate", files) == f"{base}:4"
    assert key_origin("models.h256.d2.hidden_size", files) == f"{override}:5"  # a model name with a dot
    assert key_origin("pairs.0", files) == f"{base}:1"
    assert key_origin("training.batch_size", files) is None  # a default: set nowhere
    assert key_origin("training.epochs", files, {"training": {"epochs": "3"}}) == "--config"
    assert key_origin("training.learning_rate", files, {"training": {"epochs": "3"}}) == f"{base}:4"
    (tmp_path / "sub").mkdir()
    assert key_origin("training.epochs", [tmp_path / "sub" / ".." / "override.yaml"]) == f"{override}:2"  # normalized


def test_a_bad_override_is_named_with_its_line(tmp_path):
    """How the benchmarks read a config (runs.pipeline_config), and what Snakemake shows (test_workflow_data.py)."""
    override = tmp_path / "override.yaml"
    override.write_text("training:\n  epochs: 20\nmodels:\n  bahdanau: {attention: bahdanau, hidden_size: -1}\n")
    with pytest.raises(ConfigError) as caught:
        pipeline_config(REPO / "config.yaml", override)
    assert str(caught.value) == (f"config: models.bahdanau.hidden_size: -1 is less than the minimum of 1 "
                                 f"({override}:4)")


@pytest.mark.parametrize(("text", "expected"), [
    ("pairs: [fra-eng, deu-eng]\ncorpora:\n  deu-eng:\n    target_column: 2\n",
     "config: corpora.deu-eng: source_column and target_column are both 2 ({override}:3)"),
    ("# the pair's name reversed\npairs: [eng-fra]\n",
     "config: pairs: 'eng-fra' has no entry in corpora (known corpora: deu-eng, fra-eng) ({override}:2)"),
    # both were an InputFunctionException traceback while Snakemake built the DAG (the download's params)
    ('corpora: {fra-eng: {url: "https://[bad/fra-eng.zip"}}\n',
     "config: corpora.fra-eng.url: https://[bad/fra-eng.zip: not a valid URL (Invalid IPv6 URL) ({override}:1)"),
    ('corpora: {fra-eng: {url: "ftp://x/fra-eng.zip"}}\n',
     "config: corpora.fra-eng.url: ftp://x/fra-eng.zip: unsupported URL scheme 'ftp' (use https://, http://, "
     "file:// or a path) ({override}:1)"),
])
def test_errors_found_across_keys_name_the_corpus_and_where_it_is_set(tmp_path, text, expected):
    """Both named no corpus or no line ('config: corpora: ...', 'config: pairs lists ...')."""
    override = tmp_path / "override.yaml"
    override.write_text(text)
    with pytest.raises(ConfigError) as caught:
        pipeline_config(REPO / "config.yaml", override)
    assert str(caught.value) == expected.format(override=override)


def test_a_config_without_its_choices_names_what_is_missing():
    expected = "config: (top level): 'pairs' is a required property"
    assert schema_error({"corpora": shipped_config()["corpora"]}) == expected


@pytest.mark.parametrize(("override", "expected"), [
    ({"prepare": {"split": {"valid": 0.6, "test": 0.5}}},
     "config: prepare.split: valid (0.6) and test (0.5) must sum to less than 1, to leave pairs for training"),
    ({"prepare": {"split": {"valid": 0.5, "test": 0.5}}},
     "config: prepare.split: valid (0.5) and test (0.5) must sum to less than 1, to leave pairs for training"),
    ({"models": {"bahdanau": {"attention": "bahdanau", "embedding_size": 64}}},
     "config: models.bahdanau: tie_embeddings needs embedding_size == hidden_size (got 64 and 256); "
     "set tie_embeddings: false"),
    ({"pairs": ["spa-eng"]}, "config: pairs: 'spa-eng' has no entry in corpora (known corpora: deu-eng, fra-eng)"),
    ({"prepare": {"filter": {"max_words": 1}}}, "config: prepare.filter.max_words: 1 is less than the minimum of 2"),
    ({"corpora": {"fra-eng": {"url": "x.zip", "source_column": 1}}},
     "config: corpora.fra-eng: source_column and target_column are both 1"),
    # its default positions count words; the shipped config's subword pieces outnumber them (a fifth of the
    # tutorial subset's sources would be cut)
    ({"figures": {"sentences": ["il est grand .", "123 -- 45"]}},
     "config: figures.sentences: item 2 ('123 -- 45') has nothing left after prepare.normalization 'ascii'"),
    ({"models": {"t": {"attention": "tutorial"}}},
     "config: models.t: the tutorial attention reads at most max_length source tokens, and its default (11: "
     "prepare.filter.max_words + 1) counts words, not the subword pieces of vocab.type sentencepiece"),
])
def test_what_the_schema_cannot_express_is_caught_at_start_too(override, expected):
    config = shipped_config()
    for key, value in override.items():
        config[key] = deep_merge(config.get(key, {}), value) if key not in ("models", "pairs") else value
    with pytest.raises(ConfigError) as caught:
        check_config(config)
    assert str(caught.value).startswith(expected)


def test_the_tutorial_attention_takes_subwords_with_its_max_length_or_words_by_default():
    config = shipped_config()
    config["models"] = {"t": {"attention": "tutorial", "max_length": 24}}
    assert check_config(config)["models"]["t"]["max_length"] == 24
    config = deep_merge(shipped_config(), {"vocab": {"type": "word"}})
    config["models"] = {"t": {"attention": "tutorial"}}
    check_config(config)


def test_a_models_training_override_sets_only_its_own_keys():
    config = shipped_config()
    config["training"] = {"epochs": 3, "batch_size": 16, "device": "cpu"}
    config["models"]["luong"] = {"attention": "luong", "training": {"epochs": 5}}
    check_config(config)
    assert config["models"]["luong"]["training"] == {"epochs": 5}  # no defaults filled into the override
    merged = training_settings(config, "luong")
    assert merged["epochs"] == 5 and merged["batch_size"] == 16 and merged["device"] == "cpu"
    assert merged["learning_rate"] == schema_default("training.learning_rate")


def test_a_null_model_in_an_override_leaves_it_out():
    config = shipped_config()
    config["models"] = {**config["models"], "luong": {"attention": "luong"}, "bahdanau": None}
    assert list(check_config(config)["models"]) == ["luong"]


def _defaults(schema: dict) -> list[tuple[str, object]]:
    """(dotted path, default) of every property with a default, ``*`` for a map's entries."""
    found = []

    def walk(node: dict, path: str) -> None:
        while "$ref" in node:
            target = schema
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        if "default" in node and path:
            found.append((path, node["default"]))
        for key, sub in node.get("properties", {}).items():
            if path.endswith("models.*") and key == "training":
                continue
            walk(sub, f"{path}.{key}" if path else key)
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], f"{path}.*")

    walk(schema, "")
    return found


@pytest.mark.parametrize(("cls", "section"), [(TrainConfig, "training"), (GRUConfig, "models.*")])
def test_the_settings_classes_default_to_the_schema(cls, section):
    """One owner: a field default that differs from the schema's would make a stage run by hand (or a test)
    train another model than the pipeline's. (The model entry's ``family`` is the GRU config's class-level
    name, the schema's default family.)"""
    instance = cls(5, 7, "luong") if cls is GRUConfig else cls()
    schema_fields = {path.split(".")[-1]: value for path, value in _defaults(load_schema())
                     if "." in path and path.rsplit(".", 1)[0] == section}
    for name in {f.name for f in fields(cls)} & set(schema_fields) - {"max_length"}:  # derived: max_words + 1
        assert getattr(instance, name) == schema_default(f"{section}.{name}"), name
    if cls is GRUConfig:
        assert schema_fields.pop("family") == GRUConfig.family == schema_default("models.*.family")
    assert not set(schema_fields) - {f.name for f in fields(cls)}, "schema keys the class does not know"


def test_the_prepare_settings_default_to_the_schema():
    settings = PrepareSettings()
    assert settings.max_words == schema_default("prepare.filter.max_words")
    assert settings.valid_fraction == schema_default("prepare.split.valid")
    assert settings.max_line_chars == schema_default("prepare.max_line_chars")
    assert settings.source_column == schema_default("corpora.*.source_column")


def test_config_yaml_restates_no_default():
    """config.yaml holds choices, not copies of the schema's defaults (a copy silently stops following the
    schema when its default changes)."""
    config = shipped_config()
    filled = check_config(copy.deepcopy(config))
    restated = []

    def walk(node, path):
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, (*path, key))
            return
        dotted = ".".join("*" if len(path) > 1 and path[0] in ("models", "corpora") and i == 1 else p
                          for i, p in enumerate(path))
        try:
            default = schema_default(dotted)
        except (KeyError, TypeError):
            return
        if node == default and dotted not in ("corpora.*.source_column", "corpora.*.target_column"):
            restated.append(".".join(path))

    walk(config, ())
    assert not restated, f"config.yaml restates schema defaults: {restated}"
    assert filled["training"]["batch_size"] == schema_default("training.batch_size")  # a key it leaves out


def test_a_yaml_syntax_error_names_the_file_line_and_column(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("training:\n  epochs: 3\n   batch_size: 2\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        check_yaml(path)
    assert str(caught.value) == f"{path}:3:14: not valid YAML (mapping values are not allowed here)"
    path.write_text("training: {epochs: 3}\n", encoding="utf-8")
    check_yaml(path)
    # an unclosed bracket is noticed at the next key: the message also names the line it opened on (review)
    path.write_text("pairs: [fra-eng\n\ntraining:\n  epochs: 3\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        check_yaml(path)
    assert str(caught.value).endswith("; while parsing a flow sequence that starts at line 1)"), caught.value


def test_the_schema_reads_the_same_with_either_yaml_loader() -> None:
    """load_schema uses libyaml's loader where PyYAML has one (faster at each Snakemake start): the same dict."""
    assert load_schema() == yaml.load(SCHEMA_PATH.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)


def test_a_number_that_snakemakes_config_option_read_as_text_says_so():
    """--config 'seeds=[1,2]' reached the config as [1, '2']: "'2' is not of type 'integer'" blamed the number the
    user typed (review)."""
    from seq2seq.schema import located

    error = ConfigError("config: seeds.1: '2' is not of type 'integer'")
    assert located(error, [], {"seeds": [1, "2"]}) == (
        "config: seeds.1: '2' is not of type 'integer' (--config): Snakemake's --config reads some list items as "
        "text; give lists in a --configfile")
    other = ConfigError("config: seeds.1: 'x' is not of type 'integer'")
    assert located(other, [], {"seeds": [1, "x"]}) == "config: seeds.1: 'x' is not of type 'integer' (--config)"
