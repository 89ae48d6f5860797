"""python -m seq2seq: every stage from the command line, with the pipeline's settings, defaults and checks."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from helpers import REPO, write_raw_corpus
from seq2seq.cli import STAGES, _arguments, _parser, main
from seq2seq.corpus import prepare_corpus, read_split
from seq2seq.models import build_model
from seq2seq.runs import model_config
from seq2seq.schema import schema_default
from seq2seq.settings import PrepareSettings, TrainConfig


def test_every_stage_of_the_pipeline_has_a_command():
    rules = {"download", "prepare", "vocab", "train", "evaluate", "figures", "summary", "explorer"}
    assert set(STAGES) == rules


def test_the_options_default_to_the_schema():
    """One owner of defaults: the command line restates none of them (a model option not given does not reach
    the stage at all: the model gets its family's default, the schema's)."""
    train = next(a for a in _parser()._subparsers._group_actions[0].choices.items() if a[0] == "train")[1]
    defaults = {action.dest: action.default for action in train._actions}
    for field in dataclasses.fields(TrainConfig):
        assert defaults[f"training.{field.name}"] == getattr(TrainConfig(), field.name), field.name
    assert defaults["training.epochs"] == schema_default("training.epochs")
    assert defaults["model_settings.family"] == schema_default("models.*.family")
    files = [f"--{name.replace('_', '-')}=x" for name in STAGES["train"].files]
    kwargs = _arguments(STAGES["train"], _parser().parse_args(["train", *files, "--attention", "luong"]))
    max_length = schema_default("prepare.filter.max_words") + 1  # as the pipeline fills it in (model_settings)
    assert kwargs["model_settings"] == {"family": "gru", "attention": "luong", "max_length": max_length}
    assert model_config(kwargs["model_settings"], 5, 7).hidden_size == schema_default("models.*.hidden_size")


def test_the_tutorial_attention_from_the_command_line_needs_no_max_length():
    """Without --max-length the tutorial model sees every sentence the prepare stage keeps, as in the pipeline."""
    files = [f"--{name.replace('_', '-')}=x" for name in STAGES["train"].files]
    kwargs = _arguments(STAGES["train"], _parser().parse_args(["train", *files, "--attention", "tutorial"]))
    model = build_model(model_config(kwargs["model_settings"], 5, 7))
    assert model.max_source_length == schema_default("prepare.filter.max_words") + 1
    kwargs = _arguments(STAGES["train"], _parser().parse_args(["train", *files, "--attention", "tutorial",
                                                               "--max-length", "8"]))
    assert build_model(model_config(kwargs["model_settings"], 5, 7)).max_source_length == 8


def test_prepare_from_the_command_line_writes_what_the_stage_writes(tmp_path):
    raw = write_raw_corpus(tmp_path / "raw.txt")
    files = {name: tmp_path / "cli" / f"{name}.tsv" for name in ("train", "valid", "test")}
    assert main(["prepare", "--raw", str(raw), *(f"--{n}={p}" for n, p in files.items()),
                 "--stats", str(tmp_path / "cli" / "stats.json"), "--max-words", "8"]) == 0
    prepare_corpus(raw, tmp_path / "train.tsv", tmp_path / "valid.tsv", tmp_path / "test.tsv",
                   tmp_path / "stats.json", PrepareSettings(max_words=8))
    for name, path in files.items():
        assert read_split(path) == read_split(tmp_path / f"{name}.tsv")


def test_a_bad_setting_is_one_line_and_exit_status_1(tmp_path):
    raw = write_raw_corpus(tmp_path / "raw.txt")
    result = subprocess.run([sys.executable, "-m", "seq2seq", "prepare", "--raw", str(raw), "--train", "a",
                             "--valid", "b", "--test", "c", "--stats", "d", "--valid-fraction", "0.7",
                             "--test-fraction", "0.5"], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                            env={"PYTHONPATH": str(REPO / "workflow"), "PATH": ""})
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith(
        "prepare failed: config: prepare.split: valid (0.7) and test (0.5) must sum to less than 1, to leave pairs "
        "for training"), result.stderr
    assert not any(tmp_path.glob("[abcd]"))


def test_a_missing_file_argument_is_argparses_usage_error(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["vocab", "--train", "x.tsv"])
    assert caught.value.code == 2 and "required: --source, --target" in capsys.readouterr().err


LABELS = {"explorer": "[[fra-eng, bahdanau]]", "summary": "[[fra-eng, bahdanau, bahdanau, 1]]"}


@pytest.mark.parametrize("stage", [name for name in STAGES if name != "download"])
def test_a_stage_run_by_hand_on_missing_inputs_is_one_line_naming_one(tmp_path, stage, capsys):
    """Every file argument points at nothing: one line naming one of them, exit status 1, nothing written (the
    prepare, vocab and train commands printed a FileNotFoundError traceback, twice)."""
    arguments = [stage]
    for name in STAGES[stage].files:
        arguments += [f"--{name.replace('_', '-')}", str(tmp_path / f"nope-{name}")]
    if stage in LABELS:
        arguments += ["--labels", LABELS[stage]]
    with pytest.raises(SystemExit) as caught:
        main(arguments)
    lines = capsys.readouterr().err.strip().splitlines()
    assert caught.value.code == 1 and len(lines) == 1, lines
    assert " failed: " in lines[0] and str(tmp_path / "nope-") in lines[0], lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("stage", sorted(LABELS))
def test_the_systems_labels_are_a_required_option(stage, capsys):
    """Without --labels the summary and the explorer failed with a TypeError on None."""
    arguments = [stage]
    for name in STAGES[stage].files:
        arguments += [f"--{name.replace('_', '-')}", "x"]
    with pytest.raises(SystemExit) as caught:
        main(arguments)
    assert caught.value.code == 2 and "required: --labels" in capsys.readouterr().err


def test_an_option_value_that_is_not_yaml_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["vocab", "--train", "x", "--source", "s", "--target", "t", "--size", "["])
    assert caught.value.code == 2
    assert "argument --size: not valid YAML: '['" in capsys.readouterr().err


@pytest.mark.parametrize("stage", ["train", "evaluate"])
def test_a_thread_count_below_one_is_a_usage_error(stage, capsys):
    arguments = [stage]
    for name in STAGES[stage].files:
        arguments += [f"--{name.replace('_', '-')}", "x"]
    with pytest.raises(SystemExit) as caught:
        main([*arguments, "--threads", "-1"])
    assert caught.value.code == 2
    assert "argument --threads: a whole number of at least 1 expected, got '-1'" in capsys.readouterr().err


def one_failure_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_figures_with_the_wrong_number_of_heatmap_paths_is_one_line_before_the_model_is_read(tmp_path, capsys):
    arguments = ["figures", "--model", str(tmp_path / "not-read.pt"), "--test", "t", "--history", "h",
                 "--attention", str(tmp_path / "a.png"), "--grid", str(tmp_path / "g.png"),
                 "--curve", str(tmp_path / "c.png"), "--count", "2"]
    with pytest.raises(SystemExit) as caught:
        main(arguments)
    assert caught.value.code == 1
    assert one_failure_line(capsys).endswith(
        "1 attention figure paths given for 2 sentences (2 test sentences (figures.count, --count) + 0 from the "
        "config)")


@pytest.mark.parametrize(("stage", "labels", "message"), [
    ("explorer", "[[fra-eng, a], [fra-eng, b]]", "1 translations files, 1 attention files and 2 labels"),
    ("explorer", "[fra-eng]", "label 'fra-eng': a run's label is [pair, system]"),
    ("summary", "[[fra-eng, luong]]", "label ['fra-eng', 'luong']: a system's label is [pair, system, model"),
])
def test_labels_that_do_not_fit_the_files_are_one_line(stage, labels, message, tmp_path, capsys):
    arguments = [stage]
    for name in STAGES[stage].files:
        arguments += [f"--{name.replace('_', '-')}", str(tmp_path / name)]
    with pytest.raises(SystemExit) as caught:
        main([*arguments, "--labels", labels])
    assert caught.value.code == 1
    assert message in one_failure_line(capsys)


def test_training_by_hand_on_splits_of_another_normalization_is_refused(tmp_path, capsys):
    """A model records its normalization for seq2seq-translate: the default ascii on unicode-normalized splits
    translated 'très' as an unknown word."""
    raw = write_raw_corpus(tmp_path / "raw.txt")
    split = {name: str(tmp_path / f"{name}.tsv") for name in ("train", "valid", "test")}
    assert main(["prepare", "--raw", str(raw), *[f"--{k}={v}" for k, v in split.items()], "--stats",
                 str(tmp_path / "stats.json"), "--normalization", "unicode"]) == 0
    assert any(not source.isascii() for source, _ in read_split(split["train"]))
    assert main(["vocab", "--train", split["train"], "--source", str(tmp_path / "s.json"), "--target",
                 str(tmp_path / "t.json"), "--type", "word"]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as caught:
        main(["train", "--train", split["train"], "--valid", split["valid"], "--source-vocab",
              str(tmp_path / "s.json"), "--target-vocab", str(tmp_path / "t.json"), "--model",
              str(tmp_path / "model.pt"), "--last", str(tmp_path / "last.pt"), "--history", str(tmp_path / "h.tsv"),
              "--attention", "luong", "--epochs", "1", "--hidden-size", "8", "--threads", "1"])
    assert caught.value.code == 1
    assert "is not ascii-normalized" in one_failure_line(capsys)
    assert not (tmp_path / "model.pt").exists()


def test_a_stage_command_loads_no_other_stages_libraries(tmp_path):
    """``python -m seq2seq prepare`` reads only its own stage's help: the other stages' modules (PyTorch,
    matplotlib) took 5 s to import for nothing."""
    raw = write_raw_corpus(tmp_path / "raw.txt")
    code = ("import sys; from seq2seq.cli import main; status = main(sys.argv[1:]); "
            "print(sorted(m for m in ('torch', 'matplotlib', 'pandas', 'seq2seq.training') if m in sys.modules)); "
            "sys.exit(status)")
    result = subprocess.run([sys.executable, "-c", code, "prepare", "--raw", str(raw), "--train", "a", "--valid",
                             "b", "--test", "c", "--stats", "d"], capture_output=True, text=True, cwd=tmp_path,
                            timeout=120, env={"PYTHONPATH": str(REPO / "workflow"), "PATH": ""})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    assert (tmp_path / "a").stat().st_size > 0


def test_the_help_of_every_stage_is_still_listed(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    listing = " ".join(capsys.readouterr().out.split())  # argparse wraps the lines
    assert caught.value.code == 0
    for name, stage in STAGES.items():
        assert f" {name} {' '.join(stage.doc.split(chr(10))[0].split())}" in listing, name


def test_an_output_that_cannot_be_written_is_one_line_before_the_work(tmp_path):
    """By hand no Snakemake makes the folders: an output under a file (or a folder without write permission) was
    found after the work, with a traceback printed twice, and the splits written before it stayed (review)."""
    raw = write_raw_corpus(tmp_path / "raw.txt")
    (tmp_path / "taken").write_text("a file, not a folder")
    result = subprocess.run([sys.executable, "-m", "seq2seq", "prepare", "--raw", str(raw), "--train", "out/a",
                             "--valid", "out/b", "--test", "out/c", "--stats", "taken/stats.json"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=120,
                            env={"PYTHONPATH": str(REPO / "workflow"), "PATH": ""})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith(
        f"prepare failed: taken/stats.json: cannot be written: {tmp_path / 'taken'} is not a folder"), lines
    assert not (tmp_path / "out").exists()
