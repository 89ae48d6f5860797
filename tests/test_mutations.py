"""The mutation check's list (tests/mutations/mutations.yaml) stays applicable: every bug it names can still be
put into the code, and the tests it names exist. Running the check itself takes minutes: see the README."""

from __future__ import annotations

import sys

import pytest

from helpers import REPO

sys.path.insert(0, str(REPO / "tests" / "mutations"))
import check  # noqa: E402  (tests/mutations/check.py)

MUTATIONS = check.load_mutations()


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.id for m in MUTATIONS])
def test_each_mutation_applies_to_the_code_as_it_is(mutation, tmp_path):
    check.check_applies(mutation, REPO)
    assert mutation.original != mutation.replacement and mutation.why
    assert mutation.tests and all((REPO / test.split("::")[0]).is_file() for test in mutation.tests)
    copy = tmp_path / mutation.file
    copy.parent.mkdir(parents=True)
    copy.write_text((REPO / mutation.file).read_text(encoding="utf-8"), encoding="utf-8")
    check.apply(mutation, tmp_path)
    mutated = copy.read_text(encoding="utf-8")
    assert mutation.replacement in mutated and mutated.count(mutation.original) == 0 or \
        mutation.original in mutation.replacement
    if copy.suffix == ".py":  # a rule file (.smk) is Snakemake's grammar: the check's unmutated run reads it
        compile(mutated, str(copy), "exec")  # a plausible bug, not a syntax error


def test_the_list_covers_the_modules_the_issue_names():
    files = {m.file.removeprefix("workflow/seq2seq/") for m in MUTATIONS}
    assert {"attention.py", "models/gru.py", "search.py", "batching.py", "training.py", "metrics.py", "summary.py",
            "corpus.py", "vocab.py", "checkpoint.py", "evaluation.py"} <= files
    assert len(MUTATIONS) >= 16
