"""The job side of the rules (seq2seq.pipeline.jobs): what a rule's params look like to Snakemake."""

from seq2seq.pipeline.jobs import rule_param


def test_a_params_repr_does_not_depend_on_the_order_of_its_keys():
    written = {"training": {"lr_schedule": "cosine", "epochs": 15, "early_stopping": {"patience": 6, "metric": "bleu"}},
               "labels": [["fra-eng", {"b": 1, "a": 2}]], "seed": None}
    reordered = {"seed": None, "labels": [["fra-eng", {"a": 2, "b": 1}]],
                 "training": {"early_stopping": {"metric": "bleu", "patience": 6}, "epochs": 15,
                              "lr_schedule": "cosine"}}
    assert repr(written) != repr(reordered)  # what Snakemake compared: another order, another param
    assert repr(rule_param(written)) == repr(rule_param(reordered))
    assert rule_param(written) == written  # the same settings, in the same containers
    assert list(rule_param(written)["training"]) == ["early_stopping", "epochs", "lr_schedule"]
    assert rule_param(("a", [1, 2])) == ("a", [1, 2])  # lists and tuples keep their order: it means something


def test_every_job_holds_the_run_while_it_runs(tmp_path, monkeypatch):
    """A job marks its run as alive for as long as it lives (seq2seq.pipeline.runlock): a training job that
    outlived its killed Snakemake let the next run release the locks and train the same model beside it."""
    import types

    from seq2seq.pipeline import jobs, runlock
    from seq2seq.stages import Stage

    monkeypatch.chdir(tmp_path)
    (tmp_path / ".snakemake").mkdir()
    seen = []

    def stage_run(**files):
        lock = tmp_path / ".snakemake" / runlock.RUNS_LOCK
        seen.append((files, lock.exists() and any(h.name == str(lock.relative_to(tmp_path)) or
                                                   h.name == str(lock) for h in runlock._held)))

    stage = Stage("corpus:prepare_corpus", {"out": "a file to write"}, "prepare", lambda smk: {})
    monkeypatch.setattr(Stage, "run", property(lambda self: stage_run))
    monkeypatch.setitem(jobs.STAGES, "fake", stage)
    monkeypatch.setattr(runlock, "_held", [])
    smk = types.SimpleNamespace(rule="fake", log=[str(tmp_path / "fake.log")], input={}, output={"out": "x"})
    jobs.run_job(smk)
    assert seen == [({"out": "x"}, True)]
