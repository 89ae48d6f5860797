"""GRU encoder-decoder with a choice of attention. No training or search in here.

Shapes: B batch, S source positions, T target positions, E embedding size, H hidden size,
L layers, V target vocabulary size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .attention import (
    Attention,
    BahdanauAttention,
    LuongAttention,
    NoAttention,
    TutorialAttention,
)
from .settings import ModelConfig
from .vocab import PAD_INDEX


@dataclass
class EncoderOutput:
    """Encoder results for a batch, plus what attention precomputes once per sentence.

    outputs [B,S,H]; mask [B,S] bool (True = real token); keys [B,S,H] (attention's projected keys);
    hidden [L,B,H] (final encoder state, the decoder's initial state).
    """

    outputs: Tensor
    mask: Tensor
    keys: Tensor
    hidden: Tensor

    def index_select(self, index: Tensor) -> "EncoderOutput":
        """Pick/repeat batch rows: index [B'] long -> an EncoderOutput of batch size B'."""
        return EncoderOutput(
            outputs=self.outputs.index_select(0, index),
            mask=self.mask.index_select(0, index),
            keys=self.keys.index_select(0, index),
            hidden=self.hidden.index_select(1, index),
        )


class Encoder(nn.Module):
    """Embedding -> dropout -> (bi)GRU over packed sequences, so padding never changes a result."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.hidden_size = config.hidden_size
        self.layers = config.layers
        self.bidirectional = config.bidirectional
        self.embedding = nn.Embedding(config.source_vocab_size, config.embedding_dim, padding_idx=PAD_INDEX)
        self.dropout = nn.Dropout(config.dropout)
        self.rnn = nn.GRU(
            config.embedding_dim,
            config.hidden_size,
            num_layers=config.layers,
            batch_first=True,
            bidirectional=config.bidirectional,
            dropout=config.dropout if config.layers > 1 else 0.0,
        )

    def forward(self, src: Tensor, src_lengths: Tensor) -> tuple[Tensor, Tensor]:
        """src [B,S], src_lengths [B] -> outputs [B,S,H] (zeros on padding), hidden [L,B,H].

        A bidirectional encoder sums its two directions, so the decoder always sees size H.
        """
        embedded = self.dropout(self.embedding(src))  # [B,S,E]
        packed = pack_padded_sequence(embedded, src_lengths.cpu(), batch_first=True, enforce_sorted=False)
        packed_out, hidden = self.rnn(packed)
        outputs, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=src.size(1))
        if self.bidirectional:
            outputs = outputs[..., : self.hidden_size] + outputs[..., self.hidden_size :]
            hidden = hidden.view(self.layers, 2, src.size(0), self.hidden_size).sum(dim=1)
        return outputs, hidden


class Decoder(nn.Module):
    """Shared parts of every decoder: target embedding, GRU, output projection.

    Subclasses define ``step`` (one time step) and may override ``teacher_forced`` (all steps with the
    reference as input) with something faster than the default loop over ``step``.
    """

    def __init__(self, config: ModelConfig, rnn_input_size: int, attention: Attention) -> None:
        super().__init__()
        self.embedding = nn.Embedding(config.target_vocab_size, config.embedding_dim, padding_idx=PAD_INDEX)
        self.dropout = nn.Dropout(config.dropout)
        self.rnn = nn.GRU(
            rnn_input_size,
            config.hidden_size,
            num_layers=config.layers,
            batch_first=True,
            dropout=config.dropout if config.layers > 1 else 0.0,
        )
        self.attention = attention
        self.out = nn.Linear(config.hidden_size, config.target_vocab_size)
        if config.tie_embeddings:
            # One matrix as input embedding and output layer (Press & Wolf 2017), at the output layer's
            # scale: N(0, 1) embeddings would start the softmax with logits of standard deviation sqrt(H).
            nn.init.normal_(self.embedding.weight, std=config.hidden_size ** -0.5)
            self.out.weight = self.embedding.weight

    def embed(self, tokens: Tensor) -> Tensor:
        """tokens [B] or [B,T] -> embedded [B,E] or [B,T,E], with dropout."""
        return self.dropout(self.embedding(tokens))

    def project(self, features: Tensor) -> Tensor:
        """features [...,H] -> logits [...,V]."""
        return self.out(self.dropout(features))

    def rnn_step(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """One GRU step: x [B,I], state [L,B,H] -> (top layer's output [B,H], state [L,B,H])."""
        output, state = self.rnn(x.unsqueeze(1), state)  # a sequence of length 1
        return output.squeeze(1), state

    def step(self, embedded: Tensor, state: Tensor, enc: EncoderOutput) -> tuple[Tensor, Tensor, Tensor]:
        """embedded [B,E], state [L,B,H] -> (features [B,H], state [L,B,H], attention [B,S])."""
        raise NotImplementedError

    def teacher_forced(self, embedded: Tensor, state: Tensor, enc: EncoderOutput) -> tuple[Tensor, Tensor]:
        """embedded [B,T,E] (reference inputs) -> (features [B,T,H], attention [B,T,S])."""
        features, attentions = [], []
        for emb_t in embedded.unbind(1):
            feature, state, attention = self.step(emb_t, state, enc)
            features.append(feature)
            attentions.append(attention)
        return torch.stack(features, 1), torch.stack(attentions, 1)


class PlainDecoder(Decoder):
    """No attention: the GRU runs over the whole target in one call when teacher-forced."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config, config.embedding_dim, NoAttention())

    def step(self, embedded: Tensor, state: Tensor, enc: EncoderOutput) -> tuple[Tensor, Tensor, Tensor]:
        top, state = self.rnn_step(embedded, state)
        return top, state, enc.mask.new_zeros(enc.mask.shape, dtype=top.dtype)

    def teacher_forced(self, embedded: Tensor, state: Tensor, enc: EncoderOutput) -> tuple[Tensor, Tensor]:
        outputs, _ = self.rnn(embedded, state)  # [B,T,H]
        return outputs, outputs.new_zeros(outputs.size(0), outputs.size(1), enc.mask.size(1))


class TutorialDecoder(Decoder):
    """The 2017 tutorial's AttnDecoderRNN: attention over fixed positions from [embedded; previous hidden],
    attn_combine(Linear(E+H -> H)) + ReLU before the GRU."""

    def __init__(self, config: ModelConfig) -> None:
        query_size = config.embedding_dim + config.hidden_size
        super().__init__(config, config.hidden_size, TutorialAttention(query_size, config.max_length))
        self.combine = nn.Linear(config.embedding_dim + config.hidden_size, config.hidden_size)

    def step(self, embedded: Tensor, state: Tensor, enc: EncoderOutput) -> tuple[Tensor, Tensor, Tensor]:
        query = torch.cat([embedded, state[-1]], dim=1)  # [B,E+H]
        context, weights = self.attention.attend(query, enc.keys, enc.outputs, enc.mask)
        x = F.relu(self.combine(torch.cat([embedded, context], dim=1)))  # [B,H]
        top, state = self.rnn_step(x, state)
        return top, state, weights


class BahdanauDecoder(Decoder):
    """Additive attention from the previous decoder state; context ++ embedded input feed the GRU."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config, config.embedding_dim + config.hidden_size, BahdanauAttention(config.hidden_size))

    def step(self, embedded: Tensor, state: Tensor, enc: EncoderOutput) -> tuple[Tensor, Tensor, Tensor]:
        context, weights = self.attention.attend(state[-1], enc.keys, enc.outputs, enc.mask)
        top, state = self.rnn_step(torch.cat([embedded, context], dim=1), state)
        return top, state, weights


class LuongDecoder(Decoder):
    """Multiplicative attention after the GRU step, h~ = tanh(Wc [c; h_t]); no input feeding, so a
    teacher-forced pass is one GRU call plus batched attention over all steps."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config, config.embedding_dim, LuongAttention(config.hidden_size, config.luong_score))
        self.Wc = nn.Linear(2 * config.hidden_size, config.hidden_size, bias=False)

    def step(self, embedded: Tensor, state: Tensor, enc: EncoderOutput) -> tuple[Tensor, Tensor, Tensor]:
        top, state = self.rnn_step(embedded, state)
        context, weights = self.attention.attend(top, enc.keys, enc.outputs, enc.mask)
        return torch.tanh(self.Wc(torch.cat([context, top], dim=1))), state, weights

    def teacher_forced(self, embedded: Tensor, state: Tensor, enc: EncoderOutput) -> tuple[Tensor, Tensor]:
        outputs, _ = self.rnn(embedded, state)  # [B,T,H]
        context, weights = self.attention.attend_all(outputs, enc.keys, enc.outputs, enc.mask)
        return torch.tanh(self.Wc(torch.cat([context, outputs], dim=2))), weights


DECODERS: dict[str, type[Decoder]] = {
    "none": PlainDecoder,
    "tutorial": TutorialDecoder,
    "bahdanau": BahdanauDecoder,
    "luong": LuongDecoder,
}


class Seq2Seq(nn.Module):
    """Encoder + decoder. Decoding protocol used by ``seq2seq.search``: encode, init_state, decode_step."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = DECODERS[config.attention](config)

    @property
    def max_source_length(self) -> int | None:
        """Longest source (tokens incl. <eos>) the model accepts; the caller cuts longer ones."""
        return self.config.max_length if self.config.attention == "tutorial" else None

    def encode(self, src: Tensor, src_lengths: Tensor) -> EncoderOutput:
        """src [B,S] long (padded with <pad>), src_lengths [B] long -> EncoderOutput."""
        limit = self.max_source_length
        if limit is not None and src.size(1) > limit:
            raise ValueError(f"source of {src.size(1)} tokens is longer than the model's max_length={limit}")
        outputs, hidden = self.encoder(src, src_lengths)
        positions = torch.arange(src.size(1), device=src.device)
        mask = positions.unsqueeze(0) < src_lengths.to(src.device).unsqueeze(1)  # [B,S]
        keys = self.decoder.attention.project_keys(outputs)
        return EncoderOutput(outputs=outputs, mask=mask, keys=keys, hidden=hidden)

    def init_state(self, enc: EncoderOutput) -> Tensor:
        """Decoder state [L,B,H]: the encoder's final state."""
        return enc.hidden

    def decode_step(self, prev_tokens: Tensor, state: Tensor, enc: EncoderOutput) -> tuple[Tensor, Tensor, Tensor]:
        """prev_tokens [B] -> (log_probs [B,V] float32, state [L,B,H], attention [B,S])."""
        features, state, attention = self.decoder.step(self.decoder.embed(prev_tokens), state, enc)
        log_probs = F.log_softmax(self.decoder.project(features).float(), dim=-1)
        return log_probs, state, attention

    def forward(
        self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor, teacher_forcing: float = 1.0
    ) -> tuple[Tensor, Tensor]:
        """src [B,S], src_lengths [B], tgt_in [B,T] (<sos> + target) -> (logits [B,T,V], attention [B,T,S]).

        With ``teacher_forcing < 1`` each step feeds back the model's own argmax instead of the reference
        with probability ``1 - teacher_forcing`` (one draw per step from the torch RNG).
        """
        enc = self.encode(src, src_lengths)
        state = self.init_state(enc)
        if teacher_forcing >= 1.0:
            features, attention = self.decoder.teacher_forced(self.decoder.embed(tgt_in), state, enc)
            return self.decoder.project(features), attention
        logits_steps, attention_steps = [], []
        prev = tgt_in[:, 0]
        steps = tgt_in.size(1)
        for t in range(steps):
            features, state, attention = self.decoder.step(self.decoder.embed(prev), state, enc)
            logits = self.decoder.project(features)  # [B,V]
            logits_steps.append(logits)
            attention_steps.append(attention)
            if t + 1 < steps:
                use_reference = torch.rand((), device=tgt_in.device) < teacher_forcing
                prev = torch.where(use_reference, tgt_in[:, t + 1], logits.detach().argmax(dim=-1))
        return torch.stack(logits_steps, 1), torch.stack(attention_steps, 1)
