"""Seq2Seq: shapes of every variant, padding invariance, teacher-forced forward == step-by-step decoding."""

import pytest
import torch
from torch.nn import functional as F

from seq2seq.batching import collate
from seq2seq.model import Seq2Seq
from seq2seq.settings import ModelConfig
from seq2seq.vocab import PAD_INDEX


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()  # tiny models: one thread is fastest, also on a busy machine
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


VARIANTS = ["none", "tutorial", "bahdanau", "luong"]
SV, TV = 13, 11


def _model(attention, **kwargs):
    torch.manual_seed(0)
    kwargs.setdefault("tie_embeddings", False)  # embeddings of 12 next to a hidden size of 16
    config = ModelConfig(SV, TV, attention, hidden_size=16, embedding_size=kwargs.pop("embedding_size", 12),
                         max_length=8, **kwargs)
    return Seq2Seq(config).eval()


def _batch():
    examples = [([4, 5, 6, 7, 2], [4, 5, 6, 2]), ([8, 2], [7, 8, 9, 10, 2]), ([9, 10, 11, 2], [5, 2])]
    return collate(examples)


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
    assert state.shape == (extra.get("layers", 1), 3, 16)
    log_probs, state2, attn = model.decode_step(batch.tgt_in[:, 0], state, enc)
    assert log_probs.shape == (3, TV) and log_probs.dtype == torch.float32
    assert state2.shape == state.shape and attn.shape == (3, 5)
    assert torch.allclose(log_probs.exp().sum(1), torch.ones(3), atol=1e-5)
    picked = enc.index_select(torch.tensor([2, 2, 0, 1]))
    assert picked.outputs.shape == (4, 5, 16) and picked.hidden.shape == (extra.get("layers", 1), 4, 16)
    assert torch.equal(picked.outputs[0], enc.outputs[2])


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
    config = ModelConfig(10, 12, "luong", hidden_size=32, bidirectional=True)
    assert ModelConfig.from_dict(config.to_dict()) == config
    assert ModelConfig.from_dict({**config.to_dict(), "max_length": None}).max_length == 11
    with pytest.raises(ValueError, match=r"config: model: unknown keys \['hiden_size'\]"):
        ModelConfig.from_dict({**config.to_dict(), "hiden_size": 3})
    with pytest.raises(ValueError, match="attention"):
        ModelConfig(10, 12, "concat")


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
        ModelConfig(SV, TV, attention, hidden_size=16, embedding_size=12, tie_embeddings=True)
