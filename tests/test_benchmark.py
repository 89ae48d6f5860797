"""Fast checks of the benchmark's pure pieces: FLOP formulas, the results table, the synthetic corpus."""

from __future__ import annotations

import csv
import math
import sys

import pytest
import torch

import bleu_vs_minutes  # workflow/benchmarks/, on the path through conftest.py
import flops
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
    assert flops.flops_per_pair("baseline", sizes, shape) == flops.tutorial2017_flops(sizes, shape)


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


@pytest.mark.parametrize("variant", b.OUR_VARIANTS)
def test_seq2seq_flops_grow_with_lengths_and_exceed_the_output_layer(variant: str) -> None:
    sizes = flops.ModelSizes(source_vocab=1000, target_vocab=900, hidden=16, max_length=11)
    small = flops.seq2seq_flops(variant, sizes, flops.DataShape(5, 5))
    assert flops.seq2seq_flops(variant, sizes, flops.DataShape(6, 6)) > small > 3 * 5 * flops.linear_flops(16, 900)


def test_attention_variants_cost_more_than_none_and_h128_uses_bahdanau() -> None:
    sizes = flops.ModelSizes(source_vocab=1000, target_vocab=900, hidden=16)
    shape = flops.DataShape(7, 7)
    none = flops.seq2seq_flops("none", sizes, shape)
    assert all(flops.seq2seq_flops(v, sizes, shape) > none for v in ("tutorial", "bahdanau", "luong"))
    assert flops.flops_per_pair("bahdanau-h128", sizes, shape) == flops.seq2seq_flops("bahdanau", sizes, shape)
    with pytest.raises(ValueError, match="unknown attention"):
        flops.seq2seq_flops("cosine", sizes, shape)


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


def test_bidirectional_encoder_doubles_only_the_encoder_flops_of_our_rows() -> None:
    sizes = flops.ModelSizes(source_vocab=100, target_vocab=50, hidden=8)
    shape = flops.DataShape(4, 3)
    encoder = 3 * flops.encoder_flops(sizes, shape)
    for variant in (*b.OUR_VARIANTS, "bahdanau-h128"):
        assert (flops.flops_per_pair(variant, sizes, shape, bidirectional=True)
                == pytest.approx(flops.flops_per_pair(variant, sizes, shape) + encoder))
    assert flops.flops_per_pair("baseline", sizes, shape, True) == flops.flops_per_pair("baseline", sizes, shape)


def test_model_options_reach_the_timed_model_and_the_table(monkeypatch) -> None:
    built, real_model = [], b.Seq2Seq
    monkeypatch.setattr(b, "Seq2Seq", lambda config: built.append(config) or real_model(config))
    data = b.prepare_data(b.synthetic_pairs(n_pairs=40, source_vocab=30, target_vocab=20, seed=1), "tiny")
    cpu = torch.device("cpu")
    options = b.ModelOptions()  # the pipeline's model: the schema's defaults
    assert options == b.ModelOptions(bidirectional=True, tie_embeddings=True, dropout=0.3, label_smoothing=0.1)
    small = b.ModelOptions(bidirectional=False, tie_embeddings=False, dropout=0.1, label_smoothing=0.0)
    quick = dict(hidden=8, batch_size=4, seconds=0.01, warmup_steps=1)
    plain = b.measure_variant("bahdanau", data, cpu, b.BenchmarkConfig(**quick, model=small))
    bidirectional = b.measure_variant("bahdanau", data, cpu, b.BenchmarkConfig(**quick, model=options))
    tutorial = b.measure_variant("baseline", data, cpu, b.BenchmarkConfig(**quick, model=options))
    # Torch's own FLOP count of one step sees the second encoder direction the formula adds.
    sizes = flops.ModelSizes(len(data.source_vocab), len(data.target_vocab), 8)
    extra = 3 * flops.encoder_flops(sizes, data.shape)
    assert bidirectional.flops_per_pair == pytest.approx(plain.flops_per_pair + extra)
    assert bidirectional.counted_flops_per_pair > plain.counted_flops_per_pair
    rows = b.build_table([tutorial, plain, bidirectional], matmul_flops_per_s=1e9)
    settings = ("bidirectional", "tie_embeddings", "dropout", "label_smoothing")
    assert [tuple(row[c] for c in settings) for row in rows] == [
        ("", "", "", ""), (False, False, 0.1, 0.0), (True, True, 0.3, 0.1)]
    assert [(c.bidirectional, c.tie_embeddings, c.dropout) for c in built] == [(False, False, 0.1), (True, True, 0.3)]
    assert options.describe() == ("bidirectional True, tie_embeddings True, dropout 0.3, label_smoothing 0.1, "
                                  "batch_tokens None")


def test_the_peer_comparison_skips_with_one_line_without_joeynmt(tmp_path, capsys) -> None:
    out = tmp_path / "peer.tsv"
    assert peer_comparison.main(["--joeynmt-python", sys.executable, "--out", str(out)]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and printed[0].startswith("SKIP: ") and "joeynmt" in printed[0]
    assert not out.exists()


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
