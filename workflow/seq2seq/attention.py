"""The GRU family's attention variants, each in one class: how it scores the source (``attend``) and the decoder
step around it (``step``), registered once in :data:`ATTENTIONS` by its name in the config (``attention: ...``).

Scoring: ``attend(query[B,Q], keys[B,S,H], values[B,S,H], mask[B,S]) -> (context[B,H], weights[B,S])``.
``mask`` is True on real source tokens; masked positions get ``-inf`` before the softmax, so their weights are
exactly 0. The modules keep no state between calls: whatever depends only on the source sentence (e.g. the
projected keys ``Ua h_s``) is computed once per sentence by ``project_keys`` (in ``encode``) and passed back in
as ``keys``.

Step: ``step(decoder, embedded[B,E], state[L,B,H], encoding) -> (features[B,H], state[L,B,H], weights[B,S])``,
using the parts every GRU decoder has (``decoder.rnn_step``, its GRU, embedding and output layer,
:class:`seq2seq.models.gru.Decoder`); ``teacher_forced`` runs all target steps with the reference as input and
may be faster than the default loop over ``step``.

A new variant is one class here with ``@register("name")`` above it (and its name in the config schema's enum,
which a test checks against :data:`ATTENTIONS`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, ClassVar

import torch
from torch import Tensor, nn
from torch.nn import functional as F

if TYPE_CHECKING:  # type hints only: the GRU family imports this module
    from .models.gru import Decoder, EncoderOutput
    from .models.gru_config import GRUConfig

LUONG_SCORES = ("general", "dot")

ATTENTIONS: dict[str, type["Attention"]] = {}


def register(name: str) -> Callable[[type["Attention"]], type["Attention"]]:
    """Class decorator: make an attention variant available as ``attention: name`` in the config."""

    def add(cls: type["Attention"]) -> type["Attention"]:
        cls.name = name
        ATTENTIONS[name] = cls
        return cls

    return add


def masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax over the last dim with ``-inf`` where ``mask`` is False. scores [...,S], mask broadcastable."""
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)


class Attention(nn.Module):
    """Base class: keys are the values unless a subclass projects them; the default teacher-forced pass loops
    over ``step``.

    Construction order is part of a seed's result (each layer draws its initial weights from the torch RNG in
    turn): a variant's scoring layers are made in ``__init__``, before the decoder's shared layers, and the
    layers of its step in :meth:`add_decoder_layers`, after them.
    """

    name: ClassVar[str]

    def __init__(self, config: GRUConfig) -> None:
        super().__init__()

    @staticmethod
    def rnn_input_size(config: GRUConfig) -> int:
        """Size of the decoder GRU's input at each step."""
        return config.embedding_dim

    def add_decoder_layers(self, decoder: Decoder, config: GRUConfig) -> None:
        """Layers of this variant's step that live on the decoder (made after its shared layers)."""

    def project_keys(self, values: Tensor) -> Tensor:
        """values [B,S,H] -> keys [B,S,H] (computed once per source sentence)."""
        return values

    def attend(self, query: Tensor, keys: Tensor, values: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def step(self, decoder: Decoder, embedded: Tensor, state: Tensor, enc: EncoderOutput
             ) -> tuple[Tensor, Tensor, Tensor]:
        raise NotImplementedError

    def teacher_forced(self, decoder: Decoder, embedded: Tensor, state: Tensor, enc: EncoderOutput
                       ) -> tuple[Tensor, Tensor]:
        """embedded [B,T,E] (reference inputs) -> (features [B,T,H], attention [B,T,S])."""
        features, attentions = [], []
        for emb_t in embedded.unbind(1):
            feature, state, attention = self.step(decoder, emb_t, state, enc)
            features.append(feature)
            attentions.append(attention)
        return torch.stack(features, 1), torch.stack(attentions, 1)


@register("none")
class NoAttention(Attention):
    """Plain encoder-decoder: the decoder never attends (and reports all-zero weights); teacher-forced, the GRU
    runs over the whole target in one call."""

    def step(self, decoder: Decoder, embedded: Tensor, state: Tensor, enc: EncoderOutput
             ) -> tuple[Tensor, Tensor, Tensor]:
        top, state = decoder.rnn_step(embedded, state)
        return top, state, enc.mask.new_zeros(enc.mask.shape, dtype=top.dtype)

    def teacher_forced(self, decoder: Decoder, embedded: Tensor, state: Tensor, enc: EncoderOutput
                       ) -> tuple[Tensor, Tensor]:
        outputs, _ = decoder.rnn(embedded, state)  # [B,T,H]
        return outputs, outputs.new_zeros(outputs.size(0), outputs.size(1), enc.mask.size(1))


@register("tutorial")
class TutorialAttention(Attention):
    """The 2017 PyTorch tutorial's AttnDecoderRNN: a Linear layer from ``[embedded; previous hidden]`` to a fixed
    number of source positions, softmax, weighted sum of the encoder outputs; then ``attn_combine``
    (Linear(E+H -> H)) and ReLU before the GRU.

    Scores beyond the real source length S are dropped; positions past each sentence's length are masked. The
    source may not be longer than ``max_length`` (the caller cuts it; see ``GRUSeq2Seq.max_source_length``).
    """

    def __init__(self, config: GRUConfig) -> None:
        super().__init__(config)
        if config.max_length is None:
            raise ValueError("the tutorial attention needs max_length, the source positions it scores (tokens "
                             "including <eos>; the pipeline takes prepare.filter.max_words + 1)")
        self.max_length = config.max_length
        self.attn = nn.Linear(config.embedding_dim + config.hidden_size, config.max_length)

    @staticmethod
    def rnn_input_size(config: GRUConfig) -> int:
        return config.hidden_size

    def add_decoder_layers(self, decoder: Decoder, config: GRUConfig) -> None:
        decoder.combine = nn.Linear(config.embedding_dim + config.hidden_size, config.hidden_size)

    def attend(self, query: Tensor, keys: Tensor, values: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """query [B, E+H]: the embedded previous token and the previous decoder state."""
        source_length = values.shape[1]
        if source_length > self.max_length:
            raise ValueError(f"source of {source_length} positions is longer than max_length={self.max_length}")
        scores = self.attn(query)[:, :source_length]  # [B,S]
        weights = masked_softmax(scores, mask)
        context = torch.bmm(weights.unsqueeze(1), values).squeeze(1)  # [B,H]
        return context, weights

    def step(self, decoder: Decoder, embedded: Tensor, state: Tensor, enc: EncoderOutput
             ) -> tuple[Tensor, Tensor, Tensor]:
        query = torch.cat([embedded, state[-1]], dim=1)  # [B,E+H]
        context, weights = self.attend(query, enc.keys, enc.outputs, enc.mask)
        x = F.relu(decoder.combine(torch.cat([embedded, context], dim=1)))  # [B,H]
        top, state = decoder.rnn_step(x, state)
        return top, state, weights


@register("bahdanau")
class BahdanauAttention(Attention):
    """Additive attention from the previous decoder state: score = Va^T tanh(Wa q + Ua h_s); the context and the
    embedded input feed the GRU."""

    def __init__(self, config: GRUConfig) -> None:
        super().__init__(config)
        hidden_size = config.hidden_size
        self.Wa = nn.Linear(hidden_size, hidden_size)
        self.Ua = nn.Linear(hidden_size, hidden_size)
        self.Va = nn.Linear(hidden_size, 1)

    @staticmethod
    def rnn_input_size(config: GRUConfig) -> int:
        return config.embedding_dim + config.hidden_size

    def project_keys(self, values: Tensor) -> Tensor:
        return self.Ua(values)

    def attend(self, query: Tensor, keys: Tensor, values: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """query [B,H]: the previous decoder state."""
        scores = self.Va(torch.tanh(self.Wa(query).unsqueeze(1) + keys)).squeeze(2)  # [B,S]
        weights = masked_softmax(scores, mask)
        context = torch.bmm(weights.unsqueeze(1), values).squeeze(1)  # [B,H]
        return context, weights

    def step(self, decoder: Decoder, embedded: Tensor, state: Tensor, enc: EncoderOutput
             ) -> tuple[Tensor, Tensor, Tensor]:
        context, weights = self.attend(state[-1], enc.keys, enc.outputs, enc.mask)
        top, state = decoder.rnn_step(torch.cat([embedded, context], dim=1), state)
        return top, state, weights


@register("luong")
class LuongAttention(Attention):
    """Multiplicative attention after the GRU step on its output h_t, then h~ = tanh(Wc [c; h_t]); no input
    feeding, so a teacher-forced pass is one GRU call plus batched attention over all steps.

    ``general``: score = h_t^T W h_s (W h_s precomputed as the keys); ``dot``: score = h_t^T h_s.
    """

    def __init__(self, config: GRUConfig) -> None:
        super().__init__(config)
        if config.luong_score not in LUONG_SCORES:
            raise ValueError(f"unknown luong_score {config.luong_score!r}; expected one of {LUONG_SCORES}")
        self.score = config.luong_score
        self.W = nn.Linear(config.hidden_size, config.hidden_size, bias=False) if self.score == "general" else None

    def add_decoder_layers(self, decoder: Decoder, config: GRUConfig) -> None:
        decoder.Wc = nn.Linear(2 * config.hidden_size, config.hidden_size, bias=False)

    def project_keys(self, values: Tensor) -> Tensor:
        return self.W(values) if self.W is not None else values

    def attend(self, query: Tensor, keys: Tensor, values: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """query [B,H]: the current GRU output h_t."""
        context, weights = self.attend_all(query.unsqueeze(1), keys, values, mask)
        return context.squeeze(1), weights.squeeze(1)

    def attend_all(self, queries: Tensor, keys: Tensor, values: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """All decoder steps at once: queries [B,T,H] -> (context [B,T,H], weights [B,T,S])."""
        scores = torch.bmm(queries, keys.transpose(1, 2))  # [B,T,S]
        weights = masked_softmax(scores, mask.unsqueeze(1))
        return torch.bmm(weights, values), weights

    def step(self, decoder: Decoder, embedded: Tensor, state: Tensor, enc: EncoderOutput
             ) -> tuple[Tensor, Tensor, Tensor]:
        top, state = decoder.rnn_step(embedded, state)
        context, weights = self.attend(top, enc.keys, enc.outputs, enc.mask)
        return torch.tanh(decoder.Wc(torch.cat([context, top], dim=1))), state, weights

    def teacher_forced(self, decoder: Decoder, embedded: Tensor, state: Tensor, enc: EncoderOutput
                       ) -> tuple[Tensor, Tensor]:
        outputs, _ = decoder.rnn(embedded, state)  # [B,T,H]
        context, weights = self.attend_all(outputs, enc.keys, enc.outputs, enc.mask)
        return torch.tanh(decoder.Wc(torch.cat([context, outputs], dim=2))), weights
