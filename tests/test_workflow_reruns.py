"""Every setting reruns the stages that read it and only those; a moved clone reruns nothing; the README's and
the shipped configs' multi-file commands run as written. Dry runs on the shared finished tiny run, planned in one
process (tests/snakemake_plans.py)."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import REPO, copy_finished_run
from seq2seq.runs import check_config
from seq2seq.schema import deep_merge, load_schema
from snakemake_plans import plans, with_overrides

pytestmark = pytest.mark.workflow

# Which stage reads what comes before it: a stage reruns everything downstream of it.
DOWNSTREAM = {
    "download": ["prepare"], "prepare": ["vocab"], "vocab": ["train"], "train": ["evaluate", "figures", "summary"],
    "evaluate": ["summary", "explorer"], "figures": [], "summary": [], "explorer": [],
}
PER_PAIR = {"download", "prepare", "vocab"}
PER_RUN = {"train", "figures"}  # one job per pair x run; evaluate: per pair x system; summary, explorer: one

# Each key of the schema ('*': any name of a map), a different valid value, and the first stage it must rerun
# (None: nothing; its downstream stages rerun with it). Values are set on a copy of the finished run's config.
MODEL_KEYS: dict[str, tuple[Any, str | None]] = {
    "attention": ("none", "train"), "luong_score": ("dot", "train"), "hidden_size": (32, "train"),
    "embedding_size": ("hidden_size", "train"),  # the model's own hidden size: tied embeddings need it
    "layers": (2, "train"), "bidirectional": (False, "train"),
    "dropout": (0.2, "train"), "tie_embeddings": (False, "train"), "max_length": (7, "train"),
    # the one family the schema knows, stated where it was the default: the same model, nothing to rerun
    "family": ("gru", None),
}
TRAINING_KEYS: dict[str, tuple[Any, str | None]] = {
    "epochs": (3, "train"), "batch_size": (8, "train"), "batch_tokens": (200, "train"), "device": ("auto", "train"),
    "optimizer": ("sgd", "train"), "learning_rate": (0.01, "train"), "weight_decay": (0.01, "train"),
    "clip_grad": (5.0, "train"), "teacher_forcing": (0.5, "train"), "label_smoothing": (0.2, "train"),
    "lr_schedule": ("cosine", "train"), "lr_factor": (0.3, "train"), "lr_patience": (4, "train"),
    # the finished run's plateau schedule does not read the warm-up-and-decay settings (the params hold their
    # defaults: seq2seq.pipeline.unread, whose tests cover the other cases), nor `select` of no averaging
    "lr_warmup_steps": (10, None), "lr_min": (1e-5, None), "average.select": ("last", None),
    "early_stopping.metric": ("valid_loss", "train"), "early_stopping.patience": (2, "train"),
    "max_minutes": (5.0, "train"), "amp": (False, "train"), "average.epochs": (2, "train"),
    "tensorboard": (True, "train"),
    "seed": (7, "refused"),  # the runs' seeds come from `seeds`
}
KEYS: dict[str, tuple[Any, str | None]] = {
    "corpora.*.url": ("elsewhere/fra-eng.txt", "download"), "corpora.*.member": ("fra.txt", "download"),
    "corpora.*.sha256": ("0" * 64, "download"), "corpora.*.source_column": (3, "prepare"),
    "corpora.*.target_column": (3, "prepare"),
    "download.retries": (9, None), "download.timeout": (5, None),  # cannot change the file
    "prepare.normalization": ("unicode", "prepare"), "prepare.filter.max_words": (9, "prepare"),
    "prepare.filter.target_prefixes": (None, "prepare"), "prepare.split.valid": (0.2, "prepare"),
    "prepare.split.test": (0.2, "prepare"), "prepare.split.seed": (5, "prepare"),
    # the download stage refuses a file of long lines before copying it: it reads these two
    "prepare.max_line_chars": (500, "download"), "prepare.max_malformed_fraction": (0.5, "download"),
    "vocab.type": ("sentencepiece", "vocab"), "vocab.min_freq": (2, "vocab"),
    "vocab.size": (100, None), "vocab.model_type": ("bpe", None),  # sentencepiece settings: unread by words
    **{f"models.*.{key}": value for key, value in MODEL_KEYS.items()},
    **{f"models.*.training.{key}": value for key, value in TRAINING_KEYS.items()},
    **{f"training.{key}": value for key, value in TRAINING_KEYS.items()},
    "compare.baseline": ("luong", "summary"), "compare.test": ("ar", "summary"),
    "compare.resamples": (50, "summary"), "compare.seed": (3, "summary"),
    "evaluation.beam_size": (3, "evaluate"), "evaluation.length_penalty": (1.0, "evaluate"),
    "evaluation.max_length": (20, "evaluate"), "evaluation.batch_size": (8, "evaluate"),
    "evaluation.bootstrap_resamples": (30, "evaluate"), "evaluation.seed": (3, "evaluate"),
    "evaluation.min_interval_sentences": (5, "evaluate"),  # the summary reads it too, and comes after
    "figures.count": (1, "figures"), "figures.sentences": (["il est grand ."], "figures"),
    "figures.format": ("svg", "figures"), "figures.grid_columns": (2, "figures"), "figures.seed": (4, "figures"),
    "figures.max_length": (20, "figures"), "figures.word_level": (True, "figures"),
    # where and how fast jobs run, not what they write
    **{f"resources.{stage}.{key}": (value, None) for stage, keys in {
        "train": {"threads": 2, "gpu": 0, "mem_mb": 9000, "runtime": 60},
        "evaluate": {"threads": 2, "gpu": 1, "mem_mb": 5000, "runtime": 30},
        "figures": {"threads": 2, "mem_mb": 5000, "runtime": 20}}.items() for key, value in keys.items()},
}
# Keys whose change adds runs, systems or a pair (checked with the jobs they add, below).
STRUCTURE_KEYS = {"pairs", "seeds", "ensembles.*.models", "ensembles.*.seeds"}


def schema_keys() -> set[str]:
    """Every leaf key of the config schema, maps' names as '*'."""
    schema = load_schema()

    def resolve(node: dict) -> dict:
        while "$ref" in node:
            target: Any = schema
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return node

    def walk(node: dict, path: str) -> set[str]:
        node = resolve(node)
        if "properties" in node:
            return set().union(*(walk(sub, f"{path}{key}.") for key, sub in node["properties"].items()))
        if isinstance(node.get("additionalProperties"), dict):
            return walk(node["additionalProperties"], f"{path}*.")
        return {path.removesuffix(".")}

    return walk(schema, "")


def nested(key: str, value: Any, name: str) -> dict:
    """{'a': {'b': value}} for 'a.b' ('*' becomes ``name``)."""
    result: Any = value
    for part in reversed(key.replace("*", name).split(".")):
        result = {part: result}
    return result


def merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for key, value in b.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def lookup(config: dict, key: str, name: str) -> Any:
    value: Any = config
    for part in key.replace("*", name).split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def jobs_of(stage: str | None, config: dict, only: str | None = None, pairs: list[str] | None = None) -> set:
    """(rule, pair, run or system) of the jobs that a change read first by ``stage`` must plan; ``only``: one
    model's jobs (and the summary and explorer that gather them)."""
    if stage is None:
        return set()
    stages, pending = set(), [stage]
    while pending:
        current = pending.pop()
        if current not in stages:
            stages.add(current)
            pending += DOWNSTREAM[current]
    runs = [m for m in config["models"] if only in (None, m)]
    expected = set()
    for pair in pairs or config["pairs"]:
        for rule in stages:
            if rule in PER_PAIR:
                expected.add((rule, pair, None))
            elif rule in PER_RUN or rule == "evaluate":
                expected |= {(rule, pair, run) for run in runs}
    return expected | {(rule, None, None) for rule in stages & {"summary", "explorer"}}


def planned_jobs(answer: dict) -> set:
    return {(rule, wc.get("pair"), wc.get("run", wc.get("system"))) for rule, wc in answer["jobs"]}


def setting_cases(config: dict) -> list[tuple[dict, list[tuple[str, str | None, str | None, set]]]]:
    """(override, [(key, the model or corpus it names, first stage, expected jobs)]) for every key of the schema,
    on the finished run's ``config``."""
    pair, (first, second) = config["pairs"][0], list(config["models"])[:2]
    cases: list[tuple[dict, list[tuple[str, str | None, str | None, set]]]] = []
    model_keys = [k for k in KEYS if k.startswith("models.") and KEYS[k][1] not in ("refused", None)]
    unread = [k for k in KEYS if KEYS[k][1] is None]
    for key, (value, stage) in KEYS.items():
        if key in model_keys or key in unread:
            continue
        name = pair if key.startswith("corpora.") else first
        expected = set() if stage == "refused" else jobs_of(stage, config)
        cases.append((nested(key, value, name), [(key, name, stage, expected)]))
    # Keys that must plan nothing, all in one override: nothing planned means none of them planned anything.
    override: dict = {}
    for key in unread:
        override = merge(override, nested(key, KEYS[key][0], first))
    cases.append((override, [(" + ".join(unread), None, None, set())]))
    # Model keys two at a time: one on each model, each must plan its own model's jobs only.
    for one, two in zip(model_keys[::2], model_keys[1::2] + [None]):
        override, checks = {}, []
        for key, model in ((one, first), (two, second)):
            if key is not None:
                value, stage = KEYS[key]
                value = config["models"][model][value] if value == "hidden_size" else value
                override = merge(override, nested(key, value, model))
                checks.append((key, model, stage, jobs_of(stage, config, model)))
        cases.append((override, checks))
    # Structure: a second pair, a second seed, an ensemble.
    other = next(p for p in config["corpora"] if p != pair)
    runs = [f"{m}/seed{s}" for m in config["models"] for s in (1, 2)]
    gather = {("summary", None, None), ("explorer", None, None)}
    structure = [
        ({"pairs": [pair, other]}, "pairs", jobs_of("download", config, pairs=[other])),
        ({"seeds": [1, 2]}, "seeds", {(rule, pair, r) for r in runs for rule in ("train", "evaluate", "figures")}
         | gather),
        ({"ensembles": {"both": {"models": [first, second]}}}, "ensembles.*.models", {("evaluate", pair, "both")}
         | gather),
        ({"ensembles": {"one": {"models": [first], "seeds": [1]}}}, "ensembles.*.seeds", {("evaluate", pair, "one")}
         | gather),
    ]
    return cases + [(override, [(key, None, "structure", expected)]) for override, key, expected in structure]


def shipped_commands() -> list[tuple[str, list[str], list[str]]]:
    """(where, shell lines run before it in its block, argv) of every `snakemake` command with `--configfile` in
    the README's code blocks and in the shipped configs' headers."""
    commands = []
    sources = [("README.md", block.splitlines()) for block in
               re.findall(r"```bash\n(.*?)```", (REPO / "README.md").read_text(encoding="utf-8"), re.S)]
    sources += [(f"workflow/configs/{path.name}", [line.removeprefix("#").strip() for line in
                 path.read_text(encoding="utf-8").splitlines() if line.startswith("#")])
                for path in sorted((REPO / "workflow" / "configs").glob("*.yaml"))]
    for where, lines in sources:
        before: list[str] = []
        for line in lines:
            if line.startswith("snakemake ") and "--configfile" in line:
                commands.append((where, list(before), shlex.split(line, comments=True)))
            elif line.startswith("echo "):
                before.append(line)
    return commands


MISPLACED = "results/fra-eng/bahdanau/metrics.json"


@pytest.fixture(scope="module")
def planned(finished_run, tmp_path_factory) -> dict[str, Any]:
    """Every dry run of this module, planned in one batch (one Snakemake start per worker): the finished run as
    it is, with each setting's override, in a copied and in a moved copy of its folder, with a product given to
    --configfile, and the shipped multi-file commands in a scratch folder."""
    from snakemake.cli import get_argument_parser

    workdir, config_file, snakefile = finished_run
    root, scratch = workdir.parent, tmp_path_factory.mktemp("plans")
    config = check_config(deep_merge(yaml.safe_load((snakefile.parent / "config.yaml").read_text()),
                                     yaml.safe_load(config_file.read_text())))
    cases = setting_cases(config)
    items = with_overrides(snakefile, workdir, [config_file], [{}] + [override for override, _ in cases],
                           scratch / "overrides")
    # The folder holding the workflow copy, the run and its config: copied (modification times kept, as by `mv`
    # and `cp -a`), and a second copy renamed after copying.
    assert snakefile.is_relative_to(root) and config_file.is_relative_to(root), "expected one folder to move"
    moved = []
    for name in ("copy", "moved"):
        folder = scratch / name
        copy_finished_run(finished_run, folder)
        if name == "moved":
            folder = folder.rename(scratch / "elsewhere")
        moved.append(folder)
        items.append((folder / snakefile.relative_to(root), folder / workdir.relative_to(root),
                      [folder / config_file.relative_to(root)]))
    items.append((snakefile, workdir, [config_file, workdir / MISPLACED]))
    # The shipped commands: every config file they name must reach one --configfile.
    shipped = []
    for where, before, argv in shipped_commands():
        named = [token for token in argv if token.endswith((".yaml", ".yml"))]
        args = get_argument_parser().parse_args(argv[1:])
        shipped.append((f"{where}: {shlex.join(argv)}", [str(p) for p in args.configfile], named, args.targets))
        if len(named) > 1:
            for line in before:  # e.g. the README's `echo ... > local.yaml`
                subprocess.run(["bash", "-c", line], cwd=scratch, check=True)
            files = [scratch / n if (scratch / n).exists() else REPO / n for n in named]
            items.append((REPO / "Snakefile", scratch, files))
    answers = plans(items)
    count = len(cases) + 1
    return {"config": config, "base": answers[0], "settings": list(zip(cases, answers[1:count])),
            "moved": list(zip(moved, answers[count:count + 2])), "misplaced": answers[count + 2],
            "shipped": shipped, "shipped_plans": [(files, answer) for (_, _, files), answer in
                                                  zip(items[count + 3:], answers[count + 3:])]}


def test_every_setting_reruns_the_stages_that_read_it_and_only_those(planned):
    """For each key of the schema, an override that changes it plans exactly the stage that reads it and the
    stages after that one (vocab.type plans vocab; a figures setting never plans train); settings that cannot
    change a result (retries, resources, sentencepiece settings under a word vocabulary, a cosine schedule's
    settings under plateau) plan nothing."""
    assert set(KEYS) | STRUCTURE_KEYS == schema_keys(), "a key of the schema has no expectation here"
    base, config = planned["base"], planned["config"]
    assert base["error"] is None and base["jobs"] == [], base
    failures = []
    for (_, checks), answer in planned["settings"]:
        jobs = planned_jobs(answer)
        for key, name, stage, expected in checks:
            if stage == "refused":
                if "seeds" not in (answer["error"] or ""):
                    failures.append(f"{key}: expected a one-line refusal, got {answer['error'] or answer['jobs']}")
                continue
            if answer["error"]:
                failures.append(f"{key}: refused: {answer['error']}")
                continue
            if name and stage != "structure" and lookup(answer["config"], key, name) == lookup(config, key, name):
                failures.append(f"{key}: the override changed nothing (test value equals the run's)")
            mine = {job for job in jobs if len(checks) == 1 or job[2] in (name, None)}
            if mine != expected:
                failures.append(f"{key}: planned {sorted(mine, key=str)}, expected {sorted(expected, key=str)}")
    assert not failures, "\n".join(failures)


def test_a_moved_or_copied_run_plans_nothing(planned):
    """The clone and its results copied to another folder, or copied and then renamed: nothing to do in either
    (the package's files are recorded as inputs relative to the working folder, not by absolute path)."""
    for folder, answer in planned["moved"]:
        assert answer["error"] is None and answer["jobs"] == [], (folder, answer)


def test_a_target_after_configfile_is_named_before_any_work(planned):
    """A product that Snakemake could read as a config file (a JSON), given after --configfile: one line."""
    assert planned["misplaced"]["error"] == (
        f"--configfile {MISPLACED}: a target, not a config file? --configfile takes every word after it as a "
        f"config file: put targets before it (snakemake --cores 4 {MISPLACED} --configfile my.yaml)")


def test_every_shipped_command_loads_every_config_file_it_names(planned):
    """Snakemake 9 keeps only the last of repeated --configfile options: every command of the README and of the
    configs' headers gives all of its files to one --configfile (as Snakemake's own argument parser reads the
    command); those that name several plan a dry run with those files (after the `echo` lines of their block,
    run in a scratch folder), and its merged config holds every key of each file."""
    assert len(planned["shipped"]) >= 8, planned["shipped"]
    for command, configfiles, named, targets in planned["shipped"]:
        assert configfiles == named, command
        assert not targets, f"{command} reads a target as a config file"
    assert planned["shipped_plans"], "expected the README's local-copy recipe"
    for files, answer in planned["shipped_plans"]:
        assert answer["error"] is None and answer["jobs"], (files, answer["error"])
        expected: dict = {}
        for path in files:
            expected = merge(expected, yaml.safe_load(Path(path).read_text(encoding="utf-8")))
        assert subset(expected, answer["config"]), (files, answer["config"])


def subset(part: Any, whole: Any) -> bool:
    """Every key of ``part`` is in ``whole`` with the same value (nested dicts key by key)."""
    if isinstance(part, dict):
        return isinstance(whole, dict) and all(k in whole and subset(v, whole[k]) for k, v in part.items())
    return part == whole
