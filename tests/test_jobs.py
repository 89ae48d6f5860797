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
