"""The figures stage: which sentences are drawn, what each heatmap shows, and reproducible files."""

from __future__ import annotations

import pytest
import torch

from helpers import model_config, save_tiny_checkpoint, tiny_pairs, tiny_trained_model
from seq2seq import figures
from seq2seq.checkpoint import cpu_state, save_model
from seq2seq.corpus import normalize, write_split
from seq2seq.figures import choose_test_sentences, draw_figures
from seq2seq.logs import InputError
from seq2seq.metadata import Metadata
from seq2seq.metrics import sentence_bleu
from seq2seq.models.gru import GRUSeq2Seq
from seq2seq.settings import FigureSettings
from seq2seq.translate import translate_sentences
from seq2seq.vocab import SentencePieceVocabulary

HISTORY = ("epoch\ttrain_loss\tvalid_loss\tvalid_bleu\tlearning_rate\tseconds\tpairs_per_s\n"
           "1\t3.0\t3.2\t4.0\t0.002\t2.0\t500\n2\t2.0\t2.5\t11.0\t0.002\t2.0\t510\n")


@pytest.fixture
def stage(tmp_path):
    """(checkpoint, test split of 20 pairs, history.tsv, those pairs) in tmp_path."""
    model, pairs = save_tiny_checkpoint(tmp_path / "model.pt")
    write_split(tmp_path / "test.tsv", pairs[:20])
    (tmp_path / "history.tsv").write_text(HISTORY)
    return model, tmp_path / "test.tsv", tmp_path / "history.tsv", pairs[:20]


def test_figures_stage_draws_sampled_and_extra_sentences_reproducibly(tmp_path, stage) -> None:
    model, test, history, _ = stage
    outputs = []
    for run in ("a", "b"):
        out = tmp_path / run
        attention = [out / f"attention_{i:02d}.png" for i in range(1, 4)]
        draw_figures(model, test, history, attention, out / "grid.png", out / "curve.png",
                     FigureSettings(count=2, sentences=["Tu es très grand !"], grid_columns=2, seed=5))
        outputs.append([p.read_bytes() for p in [*attention, out / "grid.png", out / "curve.png"]])
    assert outputs[0] == outputs[1]
    assert all(data.startswith(b"\x89PNG") for data in outputs[0])
    assert choose_test_sentences(2, 20, seed=5) == choose_test_sentences(2, 20, seed=5)
    assert len(set(choose_test_sentences(8, 20, seed=0))) == 8
    assert choose_test_sentences(3, 2, seed=0) == [0, 1, 0]
    with pytest.raises(InputError, match="2 attention figure paths given for 3 sentences"):
        draw_figures(model, test, history, attention[:2], tmp_path / "g.png", tmp_path / "c.png",
                     FigureSettings(count=2, sentences=["tu es grand ."]))


@pytest.mark.parametrize(("wrong", "reason"), [
    ("attention", "a .png file, but the figure format (figures.format, --format) is svg: name it .svg or set the "
                  "format to png"),
    ("curve", "a .pdf file, but the figure format (figures.format, --format) is svg: name it .svg or set the "
              "format to pdf"),
    ("grid", "unsupported figure format ('.jpg'; use .png, .svg or .pdf)"),
])
def test_a_file_not_named_in_the_chosen_format_is_one_line_before_anything_is_drawn(tmp_path, stage, monkeypatch,
                                                                                       wrong, reason) -> None:
    """Each file is saved in the format of its extension: one that is not figures.format (--format) would be
    written in another format than asked, silently; the stage names it before loading the model."""
    model, test, history, _ = stage
    monkeypatch.setattr(figures, "load_model", lambda *a, **k: pytest.fail("loaded the model anyway"))
    out = tmp_path / "out"
    files = {"attention": [out / "attention_01.svg", out / "attention_02.svg"], "grid": out / "grid.svg",
             "curve": out / "curve.svg"}
    bad = {"attention": out / "attention_02.png", "curve": out / "curve.pdf", "grid": out / "grid.jpg"}[wrong]
    if wrong == "attention":
        files["attention"][1] = bad
    else:
        files[wrong] = bad
    with pytest.raises(InputError) as error:
        draw_figures(model, test, history, **files, settings=FigureSettings(count=1, sentences=["tu es grand ."],
                                                                            format="svg"))
    assert str(error.value) == f"{bad}: {reason}"
    assert not out.exists(), "something was written before the check"


@pytest.mark.parametrize("history_text", [None, HISTORY.replace("\t2.0\t510", "\tslow\t510")])
def test_a_missing_or_damaged_history_stops_the_stage_before_any_figure_is_saved(tmp_path, stage,
                                                                                history_text) -> None:
    """Run by hand, the stage saved every heatmap and the grid, then failed on the history (Snakemake removes a
    failed job's outputs; a hand run kept them)."""
    model, test, history, _ = stage
    if history_text is None:
        history.unlink()
    else:
        history.write_text(history_text)
    out = tmp_path / "out"
    with pytest.raises(InputError, match=r"history\.tsv"):
        draw_figures(model, test, history, [out / "attention_01.png", out / "attention_02.png"], out / "grid.png",
                     out / "curve.png", FigureSettings(count=1, sentences=["tu es grand ."]))
    assert not out.exists()


def test_each_heatmap_shows_the_greedy_translation_its_attention_and_its_score(tmp_path, stage, monkeypatch) -> None:
    """The drawn sentences are the sampled test pairs then the config's (normalized as the training data); each
    figure gets the greedy translation with its attention, titled with the sentence BLEU against the reference."""
    model, test, history, pairs = stage
    drawn = []
    monkeypatch.setattr(figures, "attention_figure", lambda translation, title: drawn.append((translation, title)))
    monkeypatch.setattr(figures, "save_figure", lambda figure, path: None)
    settings = FigureSettings(count=3, sentences=["Tu es très grand !"], seed=2)
    draw_figures(model, test, history, [tmp_path / f"{i}.png" for i in range(4)], tmp_path / "grid.png",
                 tmp_path / "curve.png", settings)
    chosen = [pairs[i] for i in choose_test_sentences(3, len(pairs), seed=2)]
    sources = [s for s, _ in chosen] + ["tu es tres grand !"]
    trained, source_vocab, target_vocab, _ = tiny_trained_model()
    expected = translate_sentences(trained, sources, source_vocab, target_vocab, None,
                                   max_len=settings.max_length, batch_size=64)
    assert [t.source_tokens for t, _ in drawn] == [t.source_tokens for t in expected] and len(drawn) == 4
    for (translation, title), want, source, reference in zip(drawn, expected, sources, [t for _, t in chosen] + [None]):
        assert translation.output_tokens == want.output_tokens
        assert translation.attention.shape == want.attention.shape
        assert (translation.attention - want.attention).abs().max() < 1e-5
        assert title.startswith(f"{source}\n-> {want.text}\n")
        if reference is None:
            assert title.endswith("(no reference: sentence from the config)")
        else:
            assert f"sentence BLEU {sentence_bleu(want.text, reference):.1f} (reference: {reference})" in title


def test_a_subword_models_heatmaps_can_be_drawn_over_words(tmp_path, monkeypatch) -> None:
    """figures.word_level: a sentencepiece model's heatmap has one column per source word (plus <eos>) and one
    row per produced word, each row still summing to 1 (an untrained model: only the shapes and labels count)."""
    pairs = [(normalize(fr, "unicode"), normalize(en, "unicode")) for en, fr in tiny_pairs()]
    source = SentencePieceVocabulary.train([s for s, _ in pairs], 60, "unigram")
    target = SentencePieceVocabulary.train([t for _, t in pairs], 60, "unigram")
    torch.manual_seed(0)
    model = GRUSeq2Seq(model_config(len(source), len(target), "bahdanau"))
    save_model(tmp_path / "model.pt", model.config, cpu_state(model), source, target,
               Metadata(normalization="unicode"))
    write_split(tmp_path / "test.tsv", pairs[:6])
    (tmp_path / "history.tsv").write_text(HISTORY)
    drawn = []
    monkeypatch.setattr(figures, "attention_figure", lambda translation, title: drawn.append(translation))
    monkeypatch.setattr(figures, "save_figure", lambda figure, path: None)
    draw_figures(tmp_path / "model.pt", tmp_path / "test.tsv", tmp_path / "history.tsv",
                 [tmp_path / f"{i}.png" for i in range(2)], tmp_path / "grid.png", tmp_path / "curve.png",
                 FigureSettings(count=2, word_level=True, max_length=8))
    chosen = [pairs[i][0] for i in choose_test_sentences(2, 6, seed=0)]
    assert [t.source_tokens for t in drawn] == [s.split() for s in chosen]
    for translation in drawn:
        assert not any("\u2581" in token for token in translation.source_tokens + translation.output_tokens)
        assert translation.attention.shape == (len(translation.output_tokens), len(translation.source_tokens) + 1)
        assert torch.allclose(translation.attention.sum(dim=1), torch.ones(len(translation.output_tokens)), atol=1e-5)
