"""The GRU family (seq2seq.models.gru): the encoder and each decoder's step against their formulas written out
here with the module's own weights, shapes of every variant, padding invariance, teacher-forced forward ==
step-by-step decoding."""

import pytest
import torch
from torch.nn import functional as F

from helpers import model_config, seeded_model
from seq2seq.batching import collate
from seq2seq.models import build_model, config_from_dict, config_to_dict
from seq2seq.models.gru import GRUSeq2Seq, GRUState
from seq2seq.models.gru_config import GRUConfig
from seq2seq.tokens import PAD_INDEX

VARIANTS = ["none", "tutorial", "bahdanau", "luong"]
SV, TV = 13, 11


def _model(attention, **kwargs):
    kwargs.setdefault("embedding_size", 12)
    return seeded_model(attention, max_length=8, **kwargs)


def _batch():
    examples = [([4, 5, 6, 7, 2], [4, 5, 6, 2]), ([8, 2], [7, 8, 9, 10, 2]), ([9, 10, 11, 2], [5, 2])]
    return collate(examples)


# --------------------------------------------------------------------------- formulas, written out

def gru_cell(gru: torch.nn.GRU, layer: int, x: torch.Tensor, h: torch.Tensor, suffix: str = "") -> torch.Tensor:
    """One step of layer ``layer`` of ``gru`` (``suffix`` "_reverse": its backward direction), x [I], h [H]:
    r = s(W_ir x + b_ir + W_hr h + b_hr), z = s(W_iz x + b_iz + W_hz h + b_hz),
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = (1 - z) * n + z * h."""
    w_ih, w_hh = getattr(gru, f"weight_ih_l{layer}{suffix}"), getattr(gru, f"weight_hh_l{layer}{suffix}")
    b_ih, b_hh = getattr(gru, f"bias_ih_l{layer}{suffix}"), getattr(gru, f"bias_hh_l{layer}{suffix}")
    (w_ir, w_iz, w_in), (w_hr, w_hz, w_hn) = w_ih.chunk(3), w_hh.chunk(3)
    (b_ir, b_iz, b_in), (b_hr, b_hz, b_hn) = b_ih.chunk(3), b_hh.chunk(3)
    r = torch.sigmoid(w_ir @ x + b_ir + w_hr @ h + b_hr)
    z = torch.sigmoid(w_iz @ x + b_iz + w_hz @ h + b_hz)
    n = torch.tanh(w_in @ x + b_in + r * (w_hn @ h + b_hn))
    return (1 - z) * n + z * h


def gru_step(gru: torch.nn.GRU, x: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
    """A (multi-layer, unidirectional) GRU step for one sentence: x [I], state [L,H] -> new state [L,H]."""
    new = []
    for layer in range(gru.num_layers):
        x = gru_cell(gru, layer, x, state[layer])
        new.append(x)
    return torch.stack(new)


def attend(scores: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax of one sentence's scores [S] over its real positions, and the weighted sum of values [S,H]."""
    weights = torch.softmax(scores, dim=0)
    return weights @ values, weights


def reference_step(model: GRUSeq2Seq, token: int, state: torch.Tensor, outputs: torch.Tensor):
    """One decoder step of one sentence as each paper (and the 2017 tutorial) writes it: token id, state [L,H],
    the encoder outputs of the real source positions [S,H] -> (features [H], new state [L,H], weights [S])."""
    decoder, attention = model.decoder, model.config.attention
    y = decoder.embedding.weight[token]
    if attention == "none":
        state = gru_step(decoder.rnn, y, state)
        return state[-1], state, torch.zeros(len(outputs))
    if attention == "bahdanau":  # from the previous state s_{t-1}: e = v^T tanh(W s + U h); input [y; c]
        a = decoder.attention
        scores = torch.stack([a.Va.weight[0] @ torch.tanh(a.Wa.weight @ state[-1] + a.Wa.bias + a.Ua.weight @ h
                                                          + a.Ua.bias) + a.Va.bias[0] for h in outputs])
        context, weights = attend(scores, outputs)
        state = gru_step(decoder.rnn, torch.cat([y, context]), state)
        return state[-1], state, weights
    if attention == "luong":  # from the current GRU output h_t: e = h_t^T W h_s; output tanh(Wc [c; h_t])
        state = gru_step(decoder.rnn, y, state)
        top = state[-1]
        keys = outputs @ decoder.attention.W.weight.T if decoder.attention.score == "general" else outputs
        context, weights = attend(keys @ top, outputs)
        return torch.tanh(decoder.Wc.weight @ torch.cat([context, top])), state, weights
    # tutorial: from [embedded; previous hidden] over fixed positions; relu(combine [y; c]) feeds the GRU
    query = torch.cat([y, state[-1]])
    scores = (decoder.attention.attn.weight @ query + decoder.attention.attn.bias)[: len(outputs)]
    context, weights = attend(scores, outputs)
    x = torch.relu(decoder.combine.weight @ torch.cat([y, context]) + decoder.combine.bias)
    state = gru_step(decoder.rnn, x, state)
    return state[-1], state, weights


@pytest.mark.parametrize(("attention", "extra"), [
    *((a, {}) for a in VARIANTS), ("luong", {"luong_score": "dot", "embedding_size": 16}),
    ("bahdanau", {"layers": 2}), ("tutorial", {"layers": 2}), ("luong", {"layers": 2}),
])
@torch.no_grad()
def test_each_decoder_step_computes_its_formula(attention, extra):
    """Bahdanau attends from the previous decoder state, Luong from the current GRU output, the tutorial from
    [embedded; previous hidden]; each with the module's own weights, on random states and encodings."""
    model = _model(attention, **extra)
    batch = _batch()
    enc = model.encode(batch.src, batch.src_lengths)
    torch.manual_seed(4)
    state = torch.randn_like(model.init_state(enc).hidden)
    tokens = torch.tensor([4, 7, 1])
    log_probs, new_state, weights = model.decode_step(tokens, GRUState(state), enc)
    for b, length in enumerate(batch.src_lengths.tolist()):
        features, expected_state, expected_weights = reference_step(model, int(tokens[b]), state[:, b],
                                                                    enc.outputs[b, :length])
        assert torch.allclose(new_state.hidden[:, b], expected_state, atol=1e-5)
        assert torch.allclose(weights[b, :length], expected_weights, atol=1e-5)
        assert torch.all(weights[b, length:] == 0)
        logits = model.decoder.out.weight @ features + model.decoder.out.bias
        assert torch.allclose(log_probs[b], torch.log_softmax(logits, dim=0), atol=1e-5)


@pytest.mark.parametrize("attention", ["tutorial", "bahdanau", "luong"])
@torch.no_grad()
def test_the_attention_weights_change_with_the_decoder_state(attention):
    model = _model(attention)
    batch = _batch()
    enc = model.encode(batch.src, batch.src_lengths)
    tokens = torch.tensor([4, 7, 1])
    torch.manual_seed(5)
    _, _, first = model.decode_step(tokens, GRUState(torch.randn_like(enc.hidden)), enc)
    _, _, second = model.decode_step(tokens, GRUState(torch.randn_like(enc.hidden)), enc)
    for b, length in enumerate(batch.src_lengths.tolist()):
        assert (first[b, :length] - second[b, :length]).abs().max() > 1e-5, b


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("layers", [1, 2])
@torch.no_grad()
def test_the_encoder_computes_its_formula_and_starts_the_decoder(bidirectional, layers):
    """Each direction a GRU over the real tokens only; a bidirectional encoder sums the forward and backward
    outputs (and final states); padding positions are 0; the decoder starts from the summed final state."""
    model = _model("bahdanau", bidirectional=bidirectional, layers=layers)
    batch = _batch()
    enc = model.encode(batch.src, batch.src_lengths)
    rnn, hidden = model.encoder.rnn, model.config.hidden_size
    for b, length in enumerate(batch.src_lengths.tolist()):
        inputs = model.encoder.embedding.weight[batch.src[b, :length]]  # [S,E]
        finals = []
        for layer in range(layers):
            directions = [("", range(length))] + ([("_reverse", range(length - 1, -1, -1))] if bidirectional else [])
            outputs = []
            for suffix, order in directions:
                h, out = torch.zeros(hidden), torch.zeros(length, hidden)
                for t in order:
                    h = gru_cell(rnn, layer, inputs[t], h, suffix)
                    out[t] = h
                outputs.append(out)
                finals.append(h)
            inputs = torch.cat(outputs, dim=1)  # the next layer reads both directions
        expected = sum(outputs)  # the top layer's directions, summed
        assert torch.allclose(enc.outputs[b, :length], expected, atol=1e-5)
        assert torch.all(enc.outputs[b, length:] == 0)
        per_layer = torch.stack(finals).view(layers, 2 if bidirectional else 1, hidden).sum(dim=1)
        assert torch.allclose(enc.hidden[:, b], per_layer, atol=1e-5)
        assert torch.allclose(model.init_state(enc).hidden[:, b], per_layer, atol=1e-5)


# --------------------------------------------------------------------------- contracts

@pytest.mark.parametrize("attention", VARIANTS)
@pytest.mark.parametrize("extra", [{}, {"layers": 2, "bidirectional": True}])
def test_shapes(attention, extra):
    model = _model(attention, **extra)
    batch = _batch()
    logits, weights = model(batch.src, batch.src_lengths, batch.tgt_in)
    assert logits.shape == (3, 5, TV) and weights.shape == (3, 5, 5)
    enc = model.encode(batch.src, batch.src_lengths)
    assert enc.outputs.shape == (3, 5, 16) and enc.mask.shape == (3, 5)
    state = model.init_state(enc)
    assert state.hidden.shape == (extra.get("layers", 1), 3, 16)
    log_probs, state2, attn = model.decode_step(batch.tgt_in[:, 0], state, enc)
    assert log_probs.shape == (3, TV) and log_probs.dtype == torch.float32
    assert state2.hidden.shape == state.hidden.shape and attn.shape == (3, 5)
    assert torch.allclose(log_probs.exp().sum(1), torch.ones(3), atol=1e-5)
    picked = enc.select(torch.tensor([2, 2, 0, 1]))
    assert picked.outputs.shape == (4, 5, 16) and picked.hidden.shape == (extra.get("layers", 1), 4, 16)
    assert torch.equal(picked.outputs[0], enc.outputs[2])
    assert torch.equal(picked.mask[1], enc.mask[2]) and torch.equal(picked.keys[3], enc.keys[1])
    picked_state = state2.select(torch.tensor([2, 2, 0, 1]))
    assert picked_state.hidden.shape == (extra.get("layers", 1), 4, 16)
    assert torch.equal(picked_state.hidden[:, 1], state2.hidden[:, 2])


@pytest.mark.parametrize("attention", VARIANTS)
def test_attention_weights_sum_to_one_and_zero_on_padding(attention):
    model = _model(attention)
    batch = _batch()
    _, weights = model(batch.src, batch.src_lengths, batch.tgt_in)
    pad = (batch.src == PAD_INDEX).unsqueeze(1).expand_as(weights)
    assert torch.all(weights[pad] == 0)
    if attention != "none":
        assert torch.allclose(weights.sum(-1), torch.ones(3, 5), atol=1e-5)
    else:
        assert torch.all(weights == 0)


@pytest.mark.parametrize("attention", VARIANTS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padded_batch_equals_one_sentence_at_a_time(attention, bidirectional):
    model = _model(attention, bidirectional=bidirectional, layers=2)
    examples = [([4, 5, 6, 7, 2], [4, 5, 6, 2]), ([8, 2], [7, 8, 9, 10, 2]), ([9, 10, 11, 2], [5, 2])]
    batch = collate(examples)
    enc = model.encode(batch.src, batch.src_lengths)
    logits, _ = model(batch.src, batch.src_lengths, batch.tgt_in)
    batch_loss = F.cross_entropy(logits.reshape(-1, TV), batch.tgt_out.reshape(-1), ignore_index=PAD_INDEX,
                                 reduction="sum")
    single_loss = 0.0
    for row, example in enumerate(examples):
        one = collate([example])
        one_enc = model.encode(one.src, one.src_lengths)
        length = len(example[0])
        assert torch.allclose(one_enc.outputs[0], enc.outputs[row, :length], atol=1e-5)
        assert torch.all(enc.outputs[row, length:] == 0)
        assert torch.allclose(one_enc.hidden[:, 0], enc.hidden[:, row], atol=1e-5)
        one_logits, _ = model(one.src, one.src_lengths, one.tgt_in)
        single_loss += F.cross_entropy(one_logits.reshape(-1, TV), one.tgt_out.reshape(-1), reduction="sum")
    assert torch.allclose(batch_loss, single_loss, rtol=1e-5)


@pytest.mark.parametrize(("attention", "luong_score", "embedding_size"),
                         [*((a, "general", 12) for a in VARIANTS), ("luong", "dot", 16)])
@pytest.mark.parametrize("layers", [1, 2])
def test_forward_equals_step_by_step_decoding(attention, luong_score, embedding_size, layers):
    """In eval mode the teacher-forced forward (one GRU call + batched attention for luong/none)
    gives the same log-probabilities and attention as decode_step fed the reference tokens."""
    model = _model(attention, layers=layers, luong_score=luong_score, embedding_size=embedding_size)
    batch = _batch()
    logits, weights = model(batch.src, batch.src_lengths, batch.tgt_in)
    enc = model.encode(batch.src, batch.src_lengths)
    state = model.init_state(enc)
    for t in range(batch.tgt_in.size(1)):
        log_probs, state, attn = model.decode_step(batch.tgt_in[:, t], state, enc)
        assert torch.allclose(log_probs, F.log_softmax(logits[:, t], -1), atol=1e-5)
        assert torch.allclose(attn, weights[:, t], atol=1e-6)


@pytest.mark.parametrize("attention", VARIANTS)
def test_scheduled_sampling(attention):
    model = _model(attention).train()
    batch = _batch()
    torch.manual_seed(3)
    logits, weights = model(batch.src, batch.src_lengths, batch.tgt_in, teacher_forcing=0.5)
    assert logits.shape == (3, 5, TV) and weights.shape == (3, 5, 5)
    model.eval()
    full, _ = model(batch.src, batch.src_lengths, batch.tgt_in, teacher_forcing=1.0)
    # nearly always the reference: the per-step loop must then give the teacher-forced result
    torch.manual_seed(0)
    looped, _ = model(batch.src, batch.src_lengths, batch.tgt_in, teacher_forcing=0.999999)
    assert torch.allclose(full, looped, atol=1e-5)


def test_tutorial_max_source_length():
    model = _model("tutorial")
    assert model.max_source_length == 8
    assert _model("bahdanau").max_source_length is None
    src = torch.full((1, 9), 4)
    with pytest.raises(ValueError, match="max_length"):
        model.encode(src, torch.tensor([9]))


def test_config_round_trip_and_validation():
    from seq2seq.runs import model_config as pipeline_model_config
    from seq2seq.schema import ConfigError, fill_defaults, subschema
    from seq2seq.runs import model_settings

    config = model_config(10, 12, "luong", hidden_size=32, bidirectional=True, tie_embeddings=True, dropout=0.3)
    assert GRUConfig.from_dict(config.to_dict()) == config
    assert config_to_dict(config)["family"] == "gru" and config_from_dict(config_to_dict(config)) == config
    assert config_from_dict(config.to_dict()) == config  # a checkpoint from before families: gru
    # a model entry without max_length gets every kept source: prepare.filter.max_words (10) + 1
    entry = fill_defaults({"attention": "tutorial"}, subschema("models.*"))
    pipeline = {"models": {"tutorial": entry}, "prepare": {"filter": {"max_words": 10}}}
    assert pipeline_model_config(model_settings(pipeline, "tutorial"), 10, 12).max_length == 11
    with pytest.raises(ValueError, match=r"unknown keys \['hiden_size'\]"):
        GRUConfig.from_dict({**config.to_dict(), "hiden_size": 3})
    with pytest.raises(ConfigError, match=r"config: model: .*'hiden_size' was unexpected"):
        pipeline_model_config({"attention": "luong", "hiden_size": 3}, 10, 12)
    with pytest.raises(ValueError, match="attention"):
        build_model(GRUConfig(10, 12, "concat"))
    with pytest.raises(ConfigError, match="config: model.attention: 'concat'"):
        pipeline_model_config({"attention": "concat"}, 10, 12)


@pytest.mark.parametrize("attention", VARIANTS)
def test_tied_embeddings_share_one_matrix_through_training_and_a_checkpoint(attention, tmp_path):
    from seq2seq.checkpoint import save_checkpoint

    tied = _model(attention, embedding_size=16, tie_embeddings=True).train()
    untied = _model(attention, embedding_size=16)
    assert tied.decoder.out.weight is tied.decoder.embedding.weight
    assert sum(p.numel() for p in untied.parameters()) - sum(p.numel() for p in tied.parameters()) == TV * 16
    batch = _batch()
    logits, _ = tied(batch.src, batch.src_lengths, batch.tgt_in)
    F.cross_entropy(logits.reshape(-1, TV), batch.tgt_out.reshape(-1), ignore_index=PAD_INDEX).backward()
    torch.optim.SGD(tied.parameters(), lr=0.1).step()
    path = tmp_path / "tied.pt"
    save_checkpoint(path, {"model_state": tied.state_dict()})
    state = torch.load(path, weights_only=True)["model_state"]
    restored = _model(attention, embedding_size=16, tie_embeddings=True)
    restored.load_state_dict(state)
    assert restored.decoder.out.weight is restored.decoder.embedding.weight
    assert torch.equal(restored.decoder.embedding.weight, tied.decoder.embedding.weight)
    with pytest.raises(ValueError, match="tie_embeddings"):
        GRUConfig(SV, TV, attention, hidden_size=16, embedding_size=12, tie_embeddings=True)
