"""Several trained models decoding as one system: the mean of their log-probabilities at every step.

:class:`Ensemble` speaks the decoding protocol of :class:`seq2seq.model.Seq2Seq` (``encode``, ``init_state``,
``decode_step``), so greedy and beam search run on it unchanged. Its attention is the members' mean.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor, nn

from .checkpoint import CheckpointError, Metadata, load_model
from .model import EncoderOutput, Seq2Seq
from .vocab import Vocabulary


@dataclass
class EnsembleEncoding:
    """One :class:`EncoderOutput` per member; ``mask`` [B,S] is the members' common one."""

    members: list[EncoderOutput]

    @property
    def mask(self) -> Tensor:
        return self.members[0].mask

    def index_select(self, index: Tensor) -> "EnsembleEncoding":
        return EnsembleEncoding([member.index_select(index) for member in self.members])


class Ensemble(nn.Module):
    """Members with the same vocabularies and decoder depth. The decoder state is the members' states side by
    side, [L,B,H1+H2+...], so that search can pick and repeat its rows like one model's."""

    def __init__(self, members: Sequence[Seq2Seq]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        if len({m.config.layers for m in members}) > 1:
            raise ValueError("ensemble members need the same number of layers")
        self.members = nn.ModuleList(members)
        self._sizes = [m.config.hidden_size for m in members]

    @property
    def max_source_length(self) -> int | None:
        limits = [m.max_source_length for m in self.members if m.max_source_length is not None]
        return min(limits) if limits else None

    def encode(self, src: Tensor, src_lengths: Tensor) -> EnsembleEncoding:
        return EnsembleEncoding([m.encode(src, src_lengths) for m in self.members])

    def init_state(self, enc: EnsembleEncoding) -> Tensor:
        return torch.cat([m.init_state(e) for m, e in zip(self.members, enc.members)], dim=2)

    def decode_step(self, prev_tokens: Tensor, state: Tensor, enc: EnsembleEncoding
                    ) -> tuple[Tensor, Tensor, Tensor]:
        """prev_tokens [B] -> (mean log_probs [B,V], state [L,B,sum H], mean attention [B,S])."""
        log_probs, states, attentions = [], [], []
        for member, member_state, member_enc in zip(self.members, state.split(self._sizes, dim=2), enc.members):
            lp, st, att = member.decode_step(prev_tokens, member_state.contiguous(), member_enc)
            log_probs.append(lp)
            states.append(st)
            attentions.append(att.float())
        return (torch.stack(log_probs).mean(dim=0), torch.cat(states, dim=2),
                torch.stack(attentions).mean(dim=0))


def load_system(paths: Sequence[str | os.PathLike[str]], device: str | torch.device = "cpu"
                ) -> tuple[nn.Module, Vocabulary, Vocabulary, Metadata]:
    """One checkpoint: its model; several: an :class:`Ensemble` of them, which must share both vocabularies.
    Returns (model or ensemble in eval mode, source vocabulary, target vocabulary, the first member's metadata,
    with ``parameters`` summed over the members)."""
    loaded = [load_model(path, device) for path in paths]
    if not loaded:
        raise ValueError("no checkpoint given")
    model, source_vocab, target_vocab, metadata = loaded[0]
    if len(loaded) == 1:
        return model, source_vocab, target_vocab, metadata
    for path, (_, source, target, _) in zip(paths[1:], loaded[1:]):
        if (source.fingerprint(), target.fingerprint()) != (source_vocab.fingerprint(), target_vocab.fingerprint()):
            raise CheckpointError(f"{path}: other vocabularies than {paths[0]}: an ensemble's members must share "
                                  f"them (train them on the same pair and vocab settings)")
    ensemble = Ensemble([m for m, _, _, _ in loaded]).to(device).eval()
    metadata.parameters = sum(m.parameters or 0 for _, _, _, m in loaded)
    return ensemble, source_vocab, target_vocab, metadata
