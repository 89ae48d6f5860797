"""Fast checks of the benchmarks' pieces: FLOP counts and formulas, the results table, the synthetic corpus, the
machine description, the JoeyNMT peer's config and child processes."""

from __future__ import annotations

import argparse
import csv
import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest
import torch
import yaml
from torch.nn import functional as F

import bleu_vs_minutes  # workflow/benchmarks/, on the path through conftest.py
import flops
import joeynmt_peer as peer
import machine
import peer_comparison
import training_throughput as b
import tutorial_baselines as baselines


def test_linear_and_gru_flops_count_two_per_multiply_add() -> None:
    assert flops.linear_flops(3, 5) == 30
    # GRU: three gates, each with an input (I) and a hidden (H) projection.
    assert flops.gru_step_flops(input_size=4, hidden_size=2) == 2 * 3 * 2 * (4 + 2)
    assert flops.training_flops(10.0) == 30.0


def test_tutorial2017_flops_match_hand_count() -> None:
    sizes = flops.ModelSizes(source_vocab=100, target_vocab=50, hidden=8, max_length=5)
    shape = flops.DataShape(source_length=4, target_length=3)
    h, m, v = 8, 5, 50
    encoder = 4 * 2 * 3 * h * (h + h)
    step = 2 * 2 * h * m + 2 * m * h + 2 * 2 * h * h + 2 * 3 * h * (h + h) + 2 * h * v
    assert flops.tutorial2017_flops(sizes, shape) == pytest.approx(3 * (encoder + 3 * step))
    assert flops.TUTORIAL_FLOPS["baseline"] is flops.TUTORIAL_FLOPS["baseline-tuned"] is flops.tutorial2017_flops


def test_tutorial_model_at_hidden_256_is_in_the_issue_range() -> None:
    # The issue estimates ~80-90 MFLOP per pair for the tutorial model on fra-eng (about 8-9 tokens a side).
    sizes = flops.ModelSizes(source_vocab=4500, target_vocab=2900, hidden=256, max_length=11)
    mflops = flops.tutorial2017_flops(sizes, flops.DataShape(8.5, 8.5)) / 1e6
    assert 75 < mflops < 95


def test_tutorial2023_recomputes_key_projection_every_step() -> None:
    sizes = flops.ModelSizes(source_vocab=100, target_vocab=50, hidden=8)
    short, long = flops.DataShape(2, 3), flops.DataShape(4, 3)
    # Doubling the source adds encoder work plus, per decoder step, S*(2H^2 + 2H + 2H) more.
    extra = 3 * (2 * 2 * 3 * 8 * 16 + 3 * 2 * (2 * 8 * 8 + 2 * 8 + 2 * 8))
    assert flops.tutorial2023_flops(sizes, long) - flops.tutorial2023_flops(sizes, short) == pytest.approx(extra)


# Our model's training FLOPs per pair by hand, per attention: (once per source token, per decoder step) of the
# forward pass, from H hidden, E embedding, V target vocabulary, S source tokens, M max_length.
HAND_COUNT: dict[str, Callable[[int, int, int, float, int], tuple[float, float]]] = {
    "none": lambda h, e, v, s, m: (0.0, flops.gru_step_flops(e, h) + flops.linear_flops(h, v)),
    # the 2017 layer: scores over M positions (the first S kept), context over S rows, attn_combine
    "tutorial": lambda h, e, v, s, m: (0.0, flops.linear_flops(e + h, m) + 2 * s * h + flops.linear_flops(e + h, h)
                                       + flops.gru_step_flops(h, h) + flops.linear_flops(h, v)),
    # keys projected once; query projection, additive scores, context; the GRU reads [embedding; context]
    "bahdanau": lambda h, e, v, s, m: (flops.linear_flops(h, h), flops.linear_flops(h, h) + 4 * s * h
                                       + flops.gru_step_flops(e + h, h) + flops.linear_flops(h, v)),
    # keys projected once; after the GRU: scores, context, the attentional layer Linear(2H -> H)
    "luong": lambda h, e, v, s, m: (flops.linear_flops(h, h), flops.gru_step_flops(e, h) + 4 * s * h
                                    + flops.linear_flops(2 * h, h) + flops.linear_flops(h, v)),
}


def hand_count(attention: str, sizes: flops.ModelSizes, shape: flops.DataShape, bidirectional: bool) -> float:
    """Training FLOPs per pair of our model at unpadded lengths: 2*m*n*k per forward matrix product, the backward
    twice the forward, except that the encoder's initial state is a constant (zeros), so no gradient is computed
    for the input of its first hidden projection (2*3H*H per direction)."""
    h, e, v, s = sizes.hidden, sizes.emb, sizes.target_vocab, shape.source_length
    directions = 2 if bidirectional else 1
    once, step = HAND_COUNT[attention](h, e, v, s, sizes.max_length)
    forward = directions * s * flops.gru_step_flops(e, h) + s * once + shape.target_length * step
    return flops.training_flops(forward) - directions * flops.linear_flops(h, 3 * h)


@pytest.mark.parametrize(("variant", "bidirectional"), [*((v, True) for v in b.OUR_VARIANTS), ("none", False)])
def test_counted_training_flops_match_the_hand_count_on_unpadded_batches(variant: str, bidirectional: bool) -> None:
    data = b.prepare_data(b.synthetic_pairs(n_pairs=16, source_vocab=40, target_vocab=30, min_words=5, max_words=5,
                                            seed=1), "all sentences 5 words")
    config = b.BenchmarkConfig(hidden=16, batch_size=8, flop_samples=1,
                               model=b.ModelOptions(bidirectional=bidirectional))
    counted = b.count_flops_per_pair(variant, data, config)
    sizes = flops.ModelSizes(len(data.source_vocab), len(data.target_vocab), 16,
                             max_length=max(len(s) for s, _ in data.examples))
    if variant in HAND_COUNT:
        assert counted == pytest.approx(hand_count(variant, sizes, data.shape, bidirectional), rel=1e-9)
    else:  # an attention added later is counted without a formula: at least its output layer's work
        assert counted > flops.training_flops(data.shape.target_length * flops.linear_flops(16, sizes.target_vocab))


def test_the_count_includes_the_fused_attention_kernel_on_the_cpu() -> None:
    q, k, v = (torch.randn(2, 3, 5, 4, requires_grad=True) for _ in range(3))
    fused, out = flops.count_flops(lambda: F.scaled_dot_product_attention(q, k, v))
    explicit, _ = flops.count_flops(lambda: torch.softmax(q @ k.transpose(-1, -2) / 2, dim=-1) @ v)
    assert fused == explicit == 2 * (2 * 6 * 5 * 4 * 5) and out.shape == (2, 3, 5, 4)  # two [5,4]x[4,5] per head
    backward, _ = flops.count_flops(lambda: out.sum().backward())
    assert backward > fused


def test_quantile_sample_takes_the_middle_of_equal_strata() -> None:
    assert flops.quantile_sample(list(range(100)), 4, key=lambda x: -x) == [87, 62, 37, 12]
    assert flops.quantile_sample([3, 1, 2], 10, key=float) == [1, 2, 3]
    assert flops.quantile_sample([3, 1, 2], 0, key=float) == [2]


def _measurement(variant: str, pairs: int, seconds: float, batch: int = 64) -> b.Measurement:
    return b.Measurement(variant=variant, batch_size=batch, hidden_size=256, steps=max(1, pairs // batch),
                         pairs=pairs, target_tokens=8 * pairs, seconds=seconds, flops_per_pair=80e6,
                         device="cpu", threads=2)


def test_build_table_rates_ratios_and_fractions() -> None:
    rows = b.build_table([_measurement("baseline", 70, 2.0, batch=1), _measurement("baseline-tuned", 100, 2.0, batch=1),
                          _measurement("luong", 2000, 2.0)], matmul_flops_per_s=100e9)
    base, tuned, luong = rows
    assert base["pairs_per_s"] == pytest.approx(35.0)
    assert base["ratio_to_baseline"] == pytest.approx(1.0)
    assert tuned["ratio_to_baseline"] == pytest.approx(50 / 35)
    assert tuned["ratio_to_baseline_tuned"] == pytest.approx(1.0)
    assert luong["ratio_to_baseline_tuned"] == pytest.approx(1000 / 50)
    assert luong["pairs_per_s"] == pytest.approx(1000.0)
    assert luong["tokens_per_s"] == pytest.approx(8000.0)
    assert luong["ratio_to_baseline"] == pytest.approx(1000 / 35)
    assert luong["mflops_per_pair"] == pytest.approx(80.0)
    assert luong["flops_fraction"] == pytest.approx(1000 * 80e6 / 100e9)
    assert math.isnan(luong["mflops_counted"])


def test_build_table_without_baseline_and_bad_input() -> None:
    rows = b.build_table([_measurement("luong", 100, 1.0)], matmul_flops_per_s=1e9)
    assert math.isnan(rows[0]["ratio_to_baseline"]) and math.isnan(rows[0]["ratio_to_baseline_tuned"])
    with pytest.raises(ValueError, match="positive"):
        b.build_table([_measurement("luong", 100, 0.0)], matmul_flops_per_s=1e9)
    with pytest.raises(ValueError, match="matmul rate"):
        b.build_table([], matmul_flops_per_s=0.0)


def test_write_table_and_report(tmp_path) -> None:
    rows = b.build_table([_measurement("baseline", 70, 2.0, batch=1), _measurement("bahdanau", 640, 2.0)],
                         matmul_flops_per_s=100e9)
    out = tmp_path / "sub" / "bench.tsv"
    b.write_table(rows, out, {"cpu": "Test CPU", "cores": 2, "torch": "2.13.0", "matmul_gflops": 100.0})
    with open(out, encoding="utf-8") as handle:
        table = list(csv.DictReader(handle, delimiter="\t"))
    assert [r["variant"] for r in table] == ["baseline", "bahdanau"]
    assert set(b.TABLE_COLUMNS + b.MACHINE_COLUMNS) == set(table[0])
    assert [(r["cpu"], r["cores"], r["matmul_gflops"], r["gpu"]) for r in table] == [("Test CPU", "2", "100.0", "")] * 2
    assert float(table[1]["ratio_to_baseline"]) == pytest.approx(320 / 35, rel=1e-3)
    assert list(tmp_path.joinpath("sub").iterdir()) == [out]  # no temporary file left behind
    report = b.format_report(rows, {"cpu": "Test CPU", "matmul_gflops": 100.0})
    assert report.startswith("cpu: Test CPU\nmatmul_gflops: 100.0")
    assert "bahdanau" in report.splitlines()[-1]


def test_synthetic_corpus_has_the_requested_shape() -> None:
    pairs = b.synthetic_pairs(n_pairs=300, source_vocab=200, target_vocab=150, seed=3)
    assert pairs == b.synthetic_pairs(n_pairs=300, source_vocab=200, target_vocab=150, seed=3)
    assert len(pairs) == 300
    assert all(3 <= len(s.split()) <= 10 and 3 <= len(t.split()) <= 10 for s, t in pairs)
    data = b.prepare_data(pairs, "synthetic")
    assert len(data.source_vocab) == 200 + 4 and len(data.target_vocab) == 150 + 4
    assert data.max_length <= 11
    assert 4 <= data.shape.source_length <= 11


def test_pad_to_length_appends_zeros_and_rejects_long_sequences() -> None:
    padded = baselines.pad_to_length([[5, 2], [7, 8, 2]], 4)
    assert padded.tolist() == [[5, 2, 0, 0], [7, 8, 2, 0]]
    with pytest.raises(ValueError, match="max_length"):
        baselines.pad_to_length([[1, 2, 3]], 2)


def test_tutorial_models_take_one_step_on_tiny_data() -> None:
    torch.manual_seed(0)
    data = b.prepare_data(b.synthetic_pairs(n_pairs=40, source_vocab=30, target_vocab=20, seed=1), "tiny")
    device = torch.device("cpu")
    assert b.baseline_step(data, device, hidden=8, seed=0)()[0] == 1
    pairs, tokens = b.tutorial2023_step(data, device, hidden=8, batch_size=4, seed=0)()
    assert pairs == 4 and 4 * 4 <= tokens <= 4 * 11


def test_time_steps_counts_pairs_and_rounds() -> None:
    calls = []

    def step() -> tuple[int, int]:
        calls.append(1)
        return 4, 30

    timing = b.time_steps(step, torch.device("cpu"), seconds=10.0, warmup_steps=2, max_steps=5)
    assert len(calls) == 7 and timing.steps == 5
    assert (timing.pairs, timing.target_tokens) == (20, 150)
    assert timing.seconds > 0


def test_build_table_reports_best_round_and_spread() -> None:
    m = _measurement("luong", 300, 3.0)
    m.round_rates = [90.0, 110.0, 100.0]
    (row,) = b.build_table([m], matmul_flops_per_s=1e9)
    assert row["pairs_per_s"] == pytest.approx(100.0)
    assert row["pairs_per_s_best"] == pytest.approx(110.0)
    assert row["round_spread"] == pytest.approx(0.2)


def test_run_benchmark_times_the_untuned_baseline_before_tuning_the_runtime(monkeypatch) -> None:
    events: list[str] = []
    monkeypatch.setattr(b, "tune_cpu_runtime", lambda: events.append("tune"))
    monkeypatch.setattr(b, "measure_matmul_flops", lambda device: events.append("matmul") or 100e9)

    def fake_measure(variant, data, device, config):
        events.append(variant)
        return _measurement(variant, 100, 1.0)

    monkeypatch.setattr(b, "measure_variant", fake_measure)
    data = b.prepare_data(b.synthetic_pairs(n_pairs=40), "synthetic")
    config = b.BenchmarkConfig(variants=["luong", "baseline-tuned", "baseline"], seconds=0.01)
    result = b.run_benchmark(data, config, progress=lambda message: None)
    assert events == ["baseline", "tune", "matmul", "luong", "baseline-tuned"]
    assert [row["variant"] for row in result.rows] == ["baseline", "luong", "baseline-tuned"]
    events.clear()  # the tuned loop alone is timed too (it was dropped whenever the untuned one was not asked for)
    alone = b.run_benchmark(data, b.BenchmarkConfig(variants=["luong", "baseline-tuned"], seconds=0.01),
                            progress=lambda message: None)
    assert [row["variant"] for row in alone.rows] == ["luong", "baseline-tuned"]


def test_model_options_reach_the_timed_model_and_the_table(monkeypatch) -> None:
    built, real_build = [], b.build_model
    monkeypatch.setattr(b, "build_model", lambda entry, *sizes: built.append(entry) or real_build(entry, *sizes))
    data = b.prepare_data(b.synthetic_pairs(n_pairs=40, source_vocab=30, target_vocab=20, seed=1), "tiny")
    cpu = torch.device("cpu")
    options = b.ModelOptions()  # the pipeline's model: the schema's defaults
    assert options == b.ModelOptions(bidirectional=True, tie_embeddings=True, dropout=0.3, label_smoothing=0.1)
    small = b.ModelOptions(bidirectional=False, tie_embeddings=False, dropout=0.1, label_smoothing=0.0)
    quick = dict(hidden=8, batch_size=4, seconds=0.01, warmup_steps=1, flop_samples=1)
    plain = b.measure_variant("bahdanau", data, cpu, b.BenchmarkConfig(**quick, model=small))
    bidirectional = b.measure_variant("bahdanau", data, cpu, b.BenchmarkConfig(**quick, model=options))
    tutorial = b.measure_variant("baseline", data, cpu, b.BenchmarkConfig(**quick, model=options))
    # our rows' FLOPs are counted (on the same batch: the second encoder direction shows), the tutorial's analytic
    assert bidirectional.flops_per_pair == bidirectional.counted_flops_per_pair > plain.flops_per_pair
    assert plain.flops_per_pair == plain.counted_flops_per_pair
    sizes = flops.ModelSizes(len(data.source_vocab), len(data.target_vocab), 8,
                             max_length=max(len(s) for s, _ in data.examples))
    assert tutorial.flops_per_pair == flops.tutorial2017_flops(sizes, data.shape)
    assert tutorial.counted_flops_per_pair > 0
    tokens = b.measure_variant("bahdanau", data, cpu, b.BenchmarkConfig(
        **quick, model=b.ModelOptions(batch_tokens=24)))
    rows = b.build_table([tutorial, plain, bidirectional, tokens], matmul_flops_per_s=1e9)
    settings = ("bidirectional", "tie_embeddings", "dropout", "label_smoothing", "batch_size", "batch_tokens")
    assert [tuple(row[c] for c in settings) for row in rows] == [
        ("", "", "", "", 1, ""), (False, False, 0.1, 0.0, 4, None), (True, True, 0.3, 0.1, 4, None),
        (True, True, 0.3, 0.1, "", 24)]  # a token batch is no batch of --batch-size pairs
    # the timed model's weights: the second encoder direction's and the untied output layer's show
    assert rows[0]["parameters"] == "" and rows[2]["parameters"] == rows[3]["parameters"]
    encoder = 3 * (8 * 8 + 8 * 8 + 2 * 8)  # one direction's GRU: input 8 (embeddings), hidden 8
    untied = len(data.target_vocab) * 8
    assert rows[1]["parameters"] + encoder - untied == rows[2]["parameters"]
    # each of our rows builds the timed model and the counted one
    assert [(e["bidirectional"], e["tie_embeddings"], e["dropout"]) for e in built] == [(False, False, 0.1)] * 2 + [
        (True, True, 0.3)] * 4
    assert options.describe() == ("bidirectional True, tie_embeddings True, dropout 0.3, label_smoothing 0.1, "
                                  "batch_tokens None")


def test_without_a_flop_count_our_rows_have_no_flops_fraction() -> None:
    data = b.prepare_data(b.synthetic_pairs(n_pairs=40, source_vocab=30, target_vocab=20, seed=1), "tiny")
    config = b.BenchmarkConfig(hidden=8, batch_size=4, seconds=0.01, warmup_steps=1, count_flops=False)
    ours = b.measure_variant("luong", data, torch.device("cpu"), config)
    assert math.isnan(ours.flops_per_pair) and ours.counted_flops_per_pair is None
    (row,) = b.build_table([ours], matmul_flops_per_s=1e9)
    assert math.isnan(row["flops_fraction"]) and row["pairs_per_s"] > 0


def test_the_peer_comparison_skips_with_one_line_without_joeynmt(tmp_path, capsys) -> None:
    out = tmp_path / "peer.tsv"
    assert peer_comparison.main(["--joeynmt-python", sys.executable, "--out", str(out)]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and printed[0].startswith("SKIP: ") and "joeynmt" in printed[0]
    assert not out.exists()


def test_the_peer_comparisons_row_of_ours_counts_the_timed_models_weights() -> None:
    """JoeyNMT's model is matched in its settings, not in size: each row says how many weights it trained."""
    data = b.prepare_data(b.synthetic_pairs(n_pairs=40, source_vocab=30, target_vocab=20, seed=1), "tiny")
    args = argparse.Namespace(batch_size=4, hidden=8, threads=1, seconds=0.01, level="word")
    row = peer_comparison.measure_ours(args, data, None)
    timed = b.Seq2SeqStep(data, torch.device("cpu"), "bahdanau", 8, 4, seed=0).model
    assert row["parameters"] == sum(p.numel() for p in timed.parameters()) > 0
    assert "parameters" in peer_comparison.COLUMNS


def test_the_peer_comparison_times_ours_under_bf16_autocast_only_when_asked(monkeypatch) -> None:
    """--our-amp adds a row of ours under training.amp: true's bf16 autocast, labelled so; the plain rows stay
    fp32 (JoeyNMT trains in fp32 on the CPU), so the like-for-like ratio is not moved by it."""
    data = b.prepare_data(b.synthetic_pairs(n_pairs=40, source_vocab=30, target_vocab=20, seed=1), "tiny")
    args = argparse.Namespace(batch_size=4, hidden=8, threads=1, seconds=0.01, level="word")
    timed_amp = []
    real_run = peer_comparison.run_benchmark
    monkeypatch.setattr(peer_comparison, "run_benchmark",
                        lambda data, config: timed_amp.append(config.amp) or real_run(data, config))
    rows = [peer_comparison.measure_ours(args, data, None), peer_comparison.measure_ours(args, data, None, amp=True)]
    assert timed_amp == [False, True]
    assert [r["system"] for r in rows] == ["ours (bahdanau)", "ours (bahdanau, bf16 autocast)"]
    step = b.Seq2SeqStep(data, torch.device("cpu"), "bahdanau", 8, 4, seed=0, amp=True)
    assert step.amp_dtype == torch.bfloat16 and step.scaler is None


def test_the_peer_comparison_alternates_rounds_and_takes_each_sides_mean(monkeypatch, tmp_path) -> None:
    """--rounds 2: ours, JoeyNMT, ours, JoeyNMT, ours (each JoeyNMT run in its own folder); the ratio is of the
    two sides' means, and each JoeyNMT run is also set against our runs just around it."""
    timed = []
    ours = iter([100.0, 80.0, 60.0])
    joeynmt = iter([50.0, 30.0])

    def fake_ours(args, data, batch_tokens, amp=False):
        pairs = next(ours)
        timed.append(("ours", pairs))
        return {"system": "ours (bahdanau)", "batch": "4 pairs", "tokens_per_s": 10 * pairs, "pairs_per_s": pairs,
                "seconds": 1.0}

    def fake_joeynmt(args, work_dir):
        pairs = next(joeynmt)
        timed.append(("joeynmt", work_dir.name))
        return {"system": "JoeyNMT 2.3.0", "batch": "4 pairs", "tokens_per_s": 10 * pairs, "pairs_per_s": pairs,
                "seconds": 2.0}

    monkeypatch.setattr(peer_comparison, "measure_ours", fake_ours)
    monkeypatch.setattr(peer_comparison, "measure_joeynmt", fake_joeynmt)
    rows = peer_comparison.time_alternating(argparse.Namespace(rounds=2), None, tmp_path)
    assert timed == [("ours", 100.0), ("joeynmt", "round1"), ("ours", 80.0), ("joeynmt", "round2"), ("ours", 60.0)]
    assert [(r["system"][:4], r["run"]) for r in rows] == [("ours", 1), ("Joey", 1), ("ours", 2), ("Joey", 2),
                                                           ("ours", 3)]
    assert peer_comparison.round_ratios(rows, "ours (bahdanau)", "4 pairs") == [90.0 / 50.0, 70.0 / 30.0]
    peer_comparison.add_means(rows, "ours (bahdanau)", "4 pairs")
    peer_comparison.add_ratios(rows)
    means = {r["system"]: r for r in rows if r["run"] == "mean"}
    assert means["ours (bahdanau)"]["pairs_per_s"] == 80.0 and means["JoeyNMT 2.3.0"]["pairs_per_s"] == 40.0
    assert means["ours (bahdanau)"]["ratio_to_joeynmt_pairs"] == 2.0  # the means' ratio, not JoeyNMT's first run's
    assert means["ours (bahdanau)"]["ratio_to_joeynmt_tokens"] == 2.0


def test_one_round_of_the_peer_comparison_is_ours_joeynmt_ours(monkeypatch, tmp_path) -> None:
    """The default: one JoeyNMT run in the work folder itself, between two of ours; no mean row of JoeyNMT."""
    monkeypatch.setattr(peer_comparison, "measure_ours", lambda *a, **k: {
        "system": "ours (bahdanau)", "batch": "4 pairs", "tokens_per_s": 300.0, "pairs_per_s": 30.0, "seconds": 1.0})
    folders = []
    monkeypatch.setattr(peer_comparison, "measure_joeynmt", lambda args, work_dir: folders.append(work_dir) or {
        "system": "JoeyNMT 2.3.0", "batch": "4 pairs", "tokens_per_s": 200.0, "pairs_per_s": 20.0, "seconds": 1.0})
    rows = peer_comparison.time_alternating(argparse.Namespace(rounds=1), None, tmp_path)
    assert folders == [tmp_path] and [r["run"] for r in rows] == [1, 1, 2]
    peer_comparison.add_means(rows, "ours (bahdanau)", "4 pairs")
    assert [r["system"] for r in rows if r["run"] == "mean"] == ["ours (bahdanau)"]


def test_the_peer_comparison_ratios_are_over_joeynmt() -> None:
    rows = [{"system": "ours (bahdanau)", "tokens_per_s": 300.0, "pairs_per_s": 40.0},
            {"system": "JoeyNMT 2.3.0", "tokens_per_s": 200.0, "pairs_per_s": 25.0}]
    peer_comparison.add_ratios(rows)
    assert [r["ratio_to_joeynmt_tokens"] for r in rows] == [1.5, 1.0]
    assert [r["ratio_to_joeynmt_pairs"] for r in rows] == [1.6, 1.0]


def test_bleu_vs_minutes_trains_what_the_pipeline_would_with_the_override() -> None:
    config = bleu_vs_minutes.pipeline_config(bleu_vs_minutes.REPO / "workflow" / "configs" / "full.yaml")
    assert config["training"]["batch_tokens"] == 1500 and config["vocab"]["type"] == "sentencepiece"
    assert config["evaluation"]["max_length"] == 60 and list(config["models"]) == ["bahdanau"]
    assert bleu_vs_minutes.pipeline_config(None)["training"]["batch_size"] == 64  # config.yaml alone: the defaults


def test_bleu_vs_minutes_keeps_the_configs_schedule_and_measures_memory_after_decoding(tmp_path, capsys) -> None:
    """A cosine schedule falls over the config's epochs, as in the pipeline (it used to be spread over 10,000
    epochs: a constant rate), and the peak memory is read after decoding, without every epoch's weights held."""
    from helpers import tiny_pairs
    from seq2seq.corpus import write_split
    from seq2seq.settings import VocabSettings
    from seq2seq.vocab import write_vocabularies

    from seq2seq.corpus import normalize

    results = tmp_path / "fra-eng"  # as the prepare stage writes them (the training checks the normalization)
    pairs = [(normalize(french, "ascii"), normalize(english, "ascii")) for english, french in tiny_pairs()]
    for name, split in (("train", pairs[:110]), ("valid", pairs[110:126]), ("test", pairs[126:])):
        write_split(results / "data" / f"{name}.tsv", split)
    write_vocabularies(results / "data" / "train.tsv", results / "vocab" / "source.json",
                       results / "vocab" / "target.json", VocabSettings(type="word"))
    override = tmp_path / "tiny.yaml"
    override.write_text(yaml.safe_dump({
        "training": {"epochs": 3, "batch_size": 16, "learning_rate": 0.01, "lr_schedule": "cosine",
                     "lr_warmup_steps": 1, "device": "cpu"},
        "models": {"bahdanau": {"attention": "bahdanau", "hidden_size": 16}}}), encoding="utf-8")
    out = tmp_path / "minutes.tsv"
    assert bleu_vs_minutes.main(["--results", str(results), "--configfile", str(override), "--minutes", "30",
                                 "--threads", "1", "--beam-size", "2", "--work-dir", str(tmp_path / "work"),
                                 "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8"), delimiter="\t"))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]  # the config's epochs end it, before the 30 minutes
    rates = [float(r["learning_rate"]) for r in csv.DictReader(
        (tmp_path / "work" / "history.tsv").open(encoding="utf-8"), delimiter="\t")]
    assert rates[2] < 0.5 * rates[1]  # the cosine's fall in its last epoch
    assert [r["peak_mb"] != "" for r in rows] == [False, False, True] and rows[-1]["test_bleu_beam"] != ""
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == [
        "history.tsv", "last.pt", "last_epoch.pt", "model.pt"]  # no epoch's weights left behind
    assert "beam" in capsys.readouterr().out


def test_the_decoding_benchmark_decodes_with_the_length_limit_and_penalty_it_is_given(tmp_path, monkeypatch) -> None:
    """Its docstring promises the evaluate stage's settings: a config's evaluation.max_length (full.yaml: 60) must
    reach the search (it was always the default, 30), and each row says which it used."""
    import benchmark_decoding
    from helpers import seeded_model
    from seq2seq.checkpoint import save_model
    from seq2seq.corpus import write_split
    from seq2seq.metadata import Metadata
    from seq2seq.vocab import WordVocabulary

    words = ["un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf"]
    source, target = WordVocabulary.build(words), WordVocabulary.build([w.upper() for w in words])
    model = seeded_model(source_vocab_size=len(source), target_vocab_size=len(target))
    save_model(tmp_path / "model.pt", model.config, model.state_dict(), source, target, Metadata())
    write_split(tmp_path / "test.tsv", [("un deux", "ONE TWO"), ("trois", "THREE")])
    searched = []
    real_translate = benchmark_decoding.translate_sentences
    monkeypatch.setattr(benchmark_decoding, "translate_sentences", lambda *args, **kwargs: searched.append(
        (kwargs["beam_size"], kwargs["max_len"], kwargs["alpha"])) or real_translate(*args, **kwargs))
    monkeypatch.setattr(benchmark_decoding, "measure_matmul_flops", lambda device: 1e9)
    out = tmp_path / "decoding.tsv"
    benchmark_decoding.main(["--model", str(tmp_path / "model.pt"), "--test", str(tmp_path / "test.tsv"),
                             "--out", str(out), "--beam-size", "2", "--max-length", "7", "--length-penalty", "0.9",
                             "--threads", "1", "--repeats", "1"])
    assert set(searched) == {(1, 7, 0.9), (2, 7, 0.9)}  # greedy search ignores alpha
    rows = list(csv.DictReader(out.open(encoding="utf-8"), delimiter="\t"))
    assert [(r["search"], r["max_length"], r["length_penalty"]) for r in rows] == [("greedy", "7", ""),
                                                                                  ("beam", "7", "0.9")]


def test_the_decoding_benchmark_under_amp_counts_the_translations_bf16_changes(tmp_path, monkeypatch) -> None:
    """--amp decodes each search again under bf16 autocast; ``changed`` counts the sentences whose translation
    differs from the fp32 row's (what decides whether the evaluate stage could decode in bf16)."""
    import benchmark_decoding
    from helpers import seeded_model
    from seq2seq.checkpoint import save_model
    from seq2seq.corpus import write_split
    from seq2seq.metadata import Metadata
    from seq2seq.translate import Translation
    from seq2seq.vocab import WordVocabulary

    words = ["un", "deux", "trois"]
    source, target = WordVocabulary.build(words), WordVocabulary.build([w.upper() for w in words])
    model = seeded_model(source_vocab_size=len(source), target_vocab_size=len(target))
    save_model(tmp_path / "model.pt", model.config, model.state_dict(), source, target, Metadata())
    write_split(tmp_path / "test.tsv", [("un", "ONE"), ("deux", "TWO"), ("trois", "THREE")])
    seen_autocast = []

    def translate(model, sentences, *args, beam_size, **kwargs):
        under_bf16 = torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
        seen_autocast.append((beam_size, under_bf16))
        # under bf16 the beam search changes its second sentence, greedy search nothing
        return [Translation(s, [], None, 0.0, f"{s}-{beam_size}" + ("!" if under_bf16 and beam_size > 1
                                                                        and i == 1 else ""))
                for i, s in enumerate(sentences)]

    monkeypatch.setattr(benchmark_decoding, "translate_sentences", translate)
    monkeypatch.setattr(benchmark_decoding, "count_flops", lambda run: (1e6, None))
    monkeypatch.setattr(benchmark_decoding, "measure_matmul_flops", lambda device: 1e9)
    out = tmp_path / "decoding.tsv"
    benchmark_decoding.main(["--model", str(tmp_path / "model.pt"), "--test", str(tmp_path / "test.tsv"),
                             "--out", str(out), "--beam-size", "2", "--threads", "1", "--repeats", "1", "--amp"])
    rows = list(csv.DictReader(out.open(encoding="utf-8"), delimiter="\t"))
    assert [(r["search"], r["precision"], r["changed"]) for r in rows] == [
        ("greedy", "fp32", "0"), ("greedy", "bf16", "0"), ("beam", "fp32", "0"), ("beam", "bf16", "1")]
    assert rows[2]["translations_sha256"] != rows[3]["translations_sha256"]
    assert (2, True) in seen_autocast and (2, False) in seen_autocast and not torch.is_autocast_enabled("cpu")


# --------------------------------------------------------------------------------------------------
# The machine description
# --------------------------------------------------------------------------------------------------

def test_the_machine_is_described_the_same_way_everywhere() -> None:
    info = machine.machine_info(torch.device("cpu"), 3, 123.44e9)
    assert info == {"cpu": machine.cpu_model(), "cores": info["cores"], "torch": torch.__version__, "device": "cpu",
                    "threads": 3, "matmul_gflops": 123.4}
    assert info["cpu"] and info["cpu"] != "unknown" and info["cores"] >= 1
    assert "matmul_gflops" not in machine.machine_info(torch.device("cpu"), 1)
    assert machine.package_version("torch") == torch.__version__
    assert machine.package_version("no-such-distribution") == "unknown"
    env = machine.thread_env(3)
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "3" and env["PATH"] == os.environ["PATH"]
    assert machine.measure_matmul_flops(torch.device("cpu"), size=32, seconds=0.001, rounds=1) > 0


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no CPU affinity on this system")
def test_the_machine_counts_the_cores_this_process_may_use(monkeypatch) -> None:
    """A Slurm job or a container gets a CPU set: the host's count would describe another machine."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert machine.machine_info(torch.device("cpu"), 1)["cores"] == 1


def test_the_joeynmt_peer_imports_nothing_of_the_package_nor_torch() -> None:
    # it runs in JoeyNMT's environment, where neither seq2seq nor this project's pins are installed
    code = ("import sys; import joeynmt_peer; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'seq2seq', 'yaml')))")
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(peer.__file__).parent, capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip() == "[]"


# --------------------------------------------------------------------------------------------------
# The JoeyNMT peer (JoeyNMT itself is not installed here)
# --------------------------------------------------------------------------------------------------

def _peer_settings(tmp_path: Path, *options: str) -> tuple[Path, peer.RunSettings]:
    """A data folder of four pairs per split (a name with a space and an accent) and the run settings for it."""
    data_dir = tmp_path / "données fra-eng"
    data_dir.mkdir()
    for split in ("train", "valid", "test"):
        (data_dir / f"{split}.tsv").write_text("source\ttarget\n" + "je suis là .\ti am here .\n" * 4,
                                               encoding="utf-8")
    args = peer.parse_args(["--data-dir", str(data_dir), "--work-dir", str(tmp_path / "work"), "--minutes", "1",
                            "--out", str(tmp_path / "out.tsv"), *options])
    return data_dir, peer.make_settings(args)


def test_the_joeynmt_config_is_written_as_yaml_that_reads_back_the_same(tmp_path: Path) -> None:
    data_dir, settings = _peer_settings(tmp_path)
    work_dir = tmp_path / "work"
    sides, references = peer.prepare_data(data_dir, work_dir, settings, valid_limit=0, test_limit=2)
    config = peer.build_config(work_dir, sides, settings)
    peer.write_config(config, work_dir / "config.yaml")
    assert yaml.safe_load((work_dir / "config.yaml").read_text(encoding="utf-8")) == config
    assert config["training"]["learning_rate_min"] == 1e-8 and config["data"]["src"]["level"] == "word"
    assert references == ["i am here ."] * 2 and (work_dir / "data" / "train.fr").read_text() == "je suis là .\n" * 4


def test_one_child_entry_runs_the_task_the_parent_names(tmp_path: Path, monkeypatch) -> None:
    _, settings = _peer_settings(tmp_path, "--threads", "3", "--flush-denormal")
    calls = []
    monkeypatch.setattr(peer, "child_setup", lambda args: ({"model_dir": str(tmp_path)}, "logger"))
    monkeypatch.setattr(peer, "CHILD_TASKS", {task: lambda args, cfg, logger, task=task: calls.append((task, args))
                                              or len(calls) for task in ("train", "decode")})
    config = tmp_path / "config.yaml"
    train = peer.child_command("train", config, settings, "--events", "events.jsonl", "--minutes", "1.5",
                               "--clock", "wall", "--logging-freq", "5")
    decode = peer.child_command("decode", config, settings, "--jobs", "jobs.json", "--results", "results.json")
    assert train[:3] == decode[:3] == [sys.executable, peer.__file__, peer.CHILD]
    assert peer.main(train[2:]) == 1 and peer.main(decode[2:]) == 2
    (task1, train_args), (task2, decode_args) = calls
    assert (task1, task2) == ("train", "decode")
    for args in (train_args, decode_args):
        assert (args.config, args.threads, args.flush_denormal) == (config, 3, True)
    assert (train_args.minutes, train_args.clock, train_args.logging_freq) == (1.5, "wall", 5)
    assert (decode_args.jobs, decode_args.results) == (Path("jobs.json"), Path("results.json"))
    with pytest.raises(SystemExit):  # a task's own options are required
        peer.main([peer.CHILD, "decode", "--config", str(config), "--threads", "1"])


@pytest.mark.skipif(importlib.util.find_spec("joeynmt") is not None, reason="JoeyNMT is installed here")
def test_the_joeynmt_peer_skips_with_one_line_without_joeynmt(tmp_path: Path, capsys) -> None:
    _, settings = _peer_settings(tmp_path)
    out = tmp_path / "out.tsv"
    assert peer.main(["--data-dir", str(tmp_path / "données fra-eng"), "--work-dir", str(tmp_path / "work"),
                      "--minutes", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and printed[0].startswith("SKIP: joeynmt is not importable")
    assert not out.exists() and not (tmp_path / "work").exists()


def test_the_benchmarks_say_what_they_measured_and_refuse_what_would_mislead(tmp_path, capsys) -> None:
    """Review: a peer comparison of our pieces against JoeyNMT's words labelled both 'word'; rates measured on
    the synthetic corpus (a wrong --data-dir) compared with the README's real-data ones; an --amp run recorded as
    fp32; sizes of 0 ending in tracebacks or in tables of nothing."""
    from seq2seq.corpus import CorpusError
    from seq2seq.settings import VocabSettings
    from seq2seq.vocab import write_vocabularies

    data = tmp_path / "data"
    from helpers import tiny_pairs
    from seq2seq.corpus import write_split
    write_split(data / "train.tsv", [(french.lower(), english.lower()) for english, french in tiny_pairs()])
    pieces = tmp_path / "pieces"
    write_vocabularies(data / "train.tsv", pieces / "source.json", pieces / "target.json",
                       VocabSettings(type="sentencepiece", size=60))
    with pytest.raises(SystemExit) as caught:
        peer_comparison.main(["--joeynmt-python", sys.executable, "--data-dir", str(data), "--vocab-dir",
                              str(pieces), "--out", str(tmp_path / "p.tsv")])
    assert caught.value.code == 2
    assert "--level word for JoeyNMT, but ours would train on sentencepiece vocabularies" in capsys.readouterr().err
    with pytest.raises(CorpusError, match="nope/train.tsv: not found"):
        b.load_data(tmp_path / "nope", required=True)
    assert b.load_data(tmp_path / "nope").description.startswith("synthetic")  # where asked for: the benchmark's
    assert "precision" in b.MACHINE_COLUMNS
    for script, arguments in (("benchmark_decoding.py", ["--model", "m", "--test", "t", "--out", "o",
                                                         "--repeats", "0"]),
                              ("benchmark_training.py", ["--out", "o", "--batch-tokens", "0"]),
                              ("benchmark_training.py", ["--out", "o", "--seconds", "-1"]),
                              ("recipes/compare.py", ["--resamples", "0", "a=b"])):
        result = subprocess.run([sys.executable, str(Path(b.__file__).parent / script), *arguments],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 2 and "Traceback" not in result.stderr, (script, result.stderr)
    result = subprocess.run([sys.executable, str(Path(b.__file__).parent / "benchmark_decoding.py"), "--model",
                             str(tmp_path / "missing.pt"), "--test", "t", "--out", "o"],
                            capture_output=True, text=True, timeout=120)
    assert (result.returncode, result.stderr.strip()) == (
        1, f"benchmark_decoding.py: error: {tmp_path / 'missing.pt'}: checkpoint file not found")
