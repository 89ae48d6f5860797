"""The GRU family: the tutorial's encoder-decoder, batched and packed, with a choice of attention
(:mod:`seq2seq.attention`). No training or search in here.

Shapes: B batch, S source positions, T target positions, E embedding size, H hidden size,
L layers, V target vocabulary size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..attention import ATTENTIONS
from ..tokens import PAD_INDEX
from .base import Model
from .gru_config import GRUConfig


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

    def select(self, index: Tensor) -> "EncoderOutput":
        """Pick/repeat batch rows: index [B'] long -> an EncoderOutput of batch size B'."""
        return EncoderOutput(
            outputs=self.outputs.index_select(0, index),
            mask=self.mask.index_select(0, index),
            keys=self.keys.index_select(0, index),
            hidden=self.hidden.index_select(1, index),
        )


@dataclass
class GRUState:
    """The decoder's state between steps: hidden [L,B,H]."""

    hidden: Tensor

    def select(self, index: Tensor) -> "GRUState":
        """Pick/repeat batch rows: index [B'] long -> the state of those B' rows."""
        return GRUState(self.hidden.index_select(1, index))


class Encoder(nn.Module):
    """Embedding -> dropout -> (bi)GRU over packed sequences, so padding never changes a result."""

    def __init__(self, config: GRUConfig) -> None:
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
    """The parts every GRU decoder has (target embedding, GRU, output projection) and its attention variant,
    whose ``step`` and ``teacher_forced`` run the decoder (see :mod:`seq2seq.attention`)."""

    def __init__(self, config: GRUConfig) -> None:
        if config.attention not in ATTENTIONS:
            raise ValueError(f"unknown attention {config.attention!r}; expected one of {sorted(ATTENTIONS)}")
        attention = ATTENTIONS[config.attention](config)  # first: the layers' initialization order of each seed
        super().__init__()
        self.embedding = nn.Embedding(config.target_vocab_size, config.embedding_dim, padding_idx=PAD_INDEX)
        self.dropout = nn.Dropout(config.dropout)
        self.rnn = nn.GRU(
            attention.rnn_input_size(config),
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
        attention.add_decoder_layers(self, config)

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
        return self.attention.step(self, embedded, state, enc)

    def teacher_forced(self, embedded: Tensor, state: Tensor, enc: EncoderOutput) -> tuple[Tensor, Tensor]:
        """embedded [B,T,E] (reference inputs) -> (features [B,T,H], attention [B,T,S])."""
        return self.attention.teacher_forced(self, embedded, state, enc)


class GRUSeq2Seq(Model):
    """Encoder + decoder, behind the contract of :mod:`seq2seq.models.base`."""

    def __init__(self, config: GRUConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)

    @property
    def max_source_length(self) -> int | None:
        """Longest source (tokens incl. <eos>) the model accepts; the caller cuts longer ones."""
        return getattr(self.decoder.attention, "max_length", None)

    @property
    def label(self) -> str:
        return self.config.attention

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

    def init_state(self, enc: EncoderOutput) -> GRUState:
        """The encoder's final state."""
        return GRUState(enc.hidden)

    def decode_step(self, prev_tokens: Tensor, state: GRUState, enc: EncoderOutput
                    ) -> tuple[Tensor, GRUState, Tensor]:
        """prev_tokens [B] -> (log_probs [B,V] float32, state, attention [B,S])."""
        features, hidden, attention = self.decoder.step(self.decoder.embed(prev_tokens), state.hidden, enc)
        log_probs = F.log_softmax(self.decoder.project(features).float(), dim=-1)
        return log_probs, GRUState(hidden), attention

    def forward(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor, teacher_forcing: float = 1.0
                ) -> tuple[Tensor, Tensor]:
        """src [B,S], src_lengths [B], tgt_in [B,T] (<sos> + target) -> (logits [B,T,V], attention [B,T,S]).

        With ``teacher_forcing < 1`` each step feeds back the model's own argmax instead of the reference
        with probability ``1 - teacher_forcing`` (one draw per step from the torch RNG).
        """
        enc = self.encode(src, src_lengths)
        state = self.init_state(enc).hidden  # [L,B,H], as search starts
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
