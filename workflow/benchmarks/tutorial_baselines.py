"""Faithful re-implementations of the PyTorch tutorial's training steps, the benchmark's baselines.

- 2017 ("Translation with a Sequence to Sequence Network and Attention", Sean Robertson): one pair per step,
  the encoder fed one token at a time from Python, an attention decoder whose ``attn`` layer scores a fixed
  ``max_length`` positions, SGD, teacher forcing ratio 0.5;
- 2023 revision: batches of 32 padded to ``max_length`` without a mask, Bahdanau attention recomputing
  ``Ua(keys)`` every step, Adam, teacher forcing 1.0.
"""

from __future__ import annotations

import random
from typing import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from seq2seq.batching import padded_rows
from seq2seq.tokens import EOS_INDEX, SOS_INDEX


# --------------------------------------------------------------------------------------------------
# The 2017 tutorial, re-implemented: batch 1, token-at-a-time encoder, fixed-length attention.
# --------------------------------------------------------------------------------------------------

class Tutorial2017Encoder(nn.Module):
    """Embedding + GRU, called once per source token. Input: one index [1]; hidden [1,1,H]."""

    def __init__(self, vocab_size: int, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.embedding = nn.Embedding(vocab_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size)

    def forward(self, token: Tensor, hidden: Tensor) -> tuple[Tensor, Tensor]:
        x = self.embedding(token).view(1, 1, -1)  # (1, 1, H)
        return self.gru(x, hidden)  # (1, 1, H), (1, 1, H)


class Tutorial2017AttnDecoder(nn.Module):
    """The 2017 ``AttnDecoderRNN``: attention weights from [embedded; hidden] over ``max_length`` slots."""

    def __init__(self, hidden_size: int, vocab_size: int, dropout: float = 0.1, max_length: int = 10) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, hidden_size)
        self.attn = nn.Linear(2 * hidden_size, max_length)
        self.attn_combine = nn.Linear(2 * hidden_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.gru = nn.GRU(hidden_size, hidden_size)
        self.out = nn.Linear(hidden_size, vocab_size)

    def forward(self, token: Tensor, hidden: Tensor, encoder_outputs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """token [1] or [1,1]; hidden [1,1,H]; encoder_outputs [max_length,H]
        -> log_probs [1,V], hidden [1,1,H], weights [1,max_length]."""
        embedded = self.dropout(self.embedding(token).view(1, 1, -1))  # (1, 1, H)
        weights = F.softmax(self.attn(torch.cat((embedded[0], hidden[0]), dim=1)), dim=1)  # (1, M)
        applied = torch.bmm(weights.unsqueeze(0), encoder_outputs.unsqueeze(0))  # (1, 1, H)
        x = F.relu(self.attn_combine(torch.cat((embedded[0], applied[0]), dim=1)).unsqueeze(0))  # (1, 1, H)
        x, hidden = self.gru(x, hidden)
        return F.log_softmax(self.out(x[0]), dim=1), hidden, weights


def tutorial2017_train_step(src: Tensor, tgt: Tensor, encoder: Tutorial2017Encoder,
                            decoder: Tutorial2017AttnDecoder, encoder_optimizer: torch.optim.Optimizer,
                            decoder_optimizer: torch.optim.Optimizer, criterion: nn.Module, max_length: int,
                            teacher_forcing_ratio: float, rng: random.Random) -> float:
    """One SGD step on one pair, as the 2017 ``train()``. src [S,1], tgt [T,1] (both end with <eos>).

    Returns the loss per target token. The teacher-forcing coin is tossed once per sentence; without
    teacher forcing the decoder feeds back its own argmax and stops at <eos>.
    """
    device = src.device
    hidden = torch.zeros(1, 1, encoder.hidden_size, device=device)
    encoder_optimizer.zero_grad()
    decoder_optimizer.zero_grad()
    encoder_outputs = torch.zeros(max_length, encoder.hidden_size, device=device)
    for i in range(src.size(0)):
        output, hidden = encoder(src[i], hidden)
        encoder_outputs[i] = output[0, 0]
    token = torch.tensor([[SOS_INDEX]], device=device)
    loss: Tensor | float = 0.0
    if rng.random() < teacher_forcing_ratio:
        for i in range(tgt.size(0)):
            log_probs, hidden, _ = decoder(token, hidden, encoder_outputs)
            loss = loss + criterion(log_probs, tgt[i])
            token = tgt[i]
    else:
        for i in range(tgt.size(0)):
            log_probs, hidden, _ = decoder(token, hidden, encoder_outputs)
            token = log_probs.topk(1)[1].squeeze().detach()
            loss = loss + criterion(log_probs, tgt[i])
            if token.item() == EOS_INDEX:
                break
    loss.backward()
    encoder_optimizer.step()
    decoder_optimizer.step()
    return loss.item() / tgt.size(0)


# --------------------------------------------------------------------------------------------------
# The 2023 tutorial, re-implemented: batches padded to MAX_LENGTH, Bahdanau attention, no mask.
# --------------------------------------------------------------------------------------------------

class Tutorial2023Encoder(nn.Module):
    """Embedding, dropout, batch-first GRU over the whole padded batch. input [B,M] -> ([B,M,H], [1,B,H])."""

    def __init__(self, vocab_size: int, hidden_size: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True)
        self.dropout = nn.Dropout(dropout)

    def forward(self, src: Tensor) -> tuple[Tensor, Tensor]:
        return self.gru(self.dropout(self.embedding(src)))


class Tutorial2023BahdanauAttention(nn.Module):
    """score = Va(tanh(Wa(query) + Ua(keys))); query [B,1,H], keys [B,S,H] -> context [B,1,H], weights [B,1,S]."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.Wa = nn.Linear(hidden_size, hidden_size)
        self.Ua = nn.Linear(hidden_size, hidden_size)
        self.Va = nn.Linear(hidden_size, 1)

    def forward(self, query: Tensor, keys: Tensor) -> tuple[Tensor, Tensor]:
        scores = self.Va(torch.tanh(self.Wa(query) + self.Ua(keys)))  # (B, S, 1)
        weights = F.softmax(scores.squeeze(2).unsqueeze(1), dim=-1)  # (B, 1, S)
        return torch.bmm(weights, keys), weights


class Tutorial2023AttnDecoder(nn.Module):
    """The 2023 ``AttnDecoderRNN``: ``max_length`` teacher-forced steps, GRU over [embedded; context]."""

    def __init__(self, hidden_size: int, vocab_size: int, max_length: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.max_length = max_length
        self.embedding = nn.Embedding(vocab_size, hidden_size)
        self.attention = Tutorial2023BahdanauAttention(hidden_size)
        self.gru = nn.GRU(2 * hidden_size, hidden_size, batch_first=True)
        self.out = nn.Linear(hidden_size, vocab_size)
        self.dropout = nn.Dropout(dropout)

    def forward(self, encoder_outputs: Tensor, encoder_hidden: Tensor, target: Tensor) -> Tensor:
        """encoder_outputs [B,M,H], encoder_hidden [1,B,H], target [B,M] -> log_probs [B,M,V]."""
        batch = encoder_outputs.size(0)
        token = torch.full((batch, 1), SOS_INDEX, dtype=torch.long, device=encoder_outputs.device)
        hidden = encoder_hidden
        outputs = []
        for i in range(self.max_length):
            embedded = self.dropout(self.embedding(token))  # (B, 1, H)
            context, _ = self.attention(hidden.permute(1, 0, 2), encoder_outputs)  # (B, 1, H)
            output, hidden = self.gru(torch.cat((embedded, context), dim=2), hidden)
            outputs.append(self.out(output))  # (B, 1, V)
            token = target[:, i].unsqueeze(1)
        return F.log_softmax(torch.cat(outputs, dim=1), dim=-1)


def pad_to_length(sequences: Sequence[Sequence[int]], length: int) -> Tensor:
    """[N, length] long tensor: each sequence (already ending with <eos>) followed by zeros (<pad>), as the
    tutorial."""
    for i, seq in enumerate(sequences):
        if len(seq) > length:
            raise ValueError(f"sequence {i} has {len(seq)} tokens, more than max_length {length}")
    return padded_rows(sequences, width=length)


def tutorial2023_train_step(src: Tensor, tgt: Tensor, encoder: Tutorial2023Encoder,
                            decoder: Tutorial2023AttnDecoder, encoder_optimizer: torch.optim.Optimizer,
                            decoder_optimizer: torch.optim.Optimizer, criterion: nn.Module) -> float:
    """One step of the 2023 ``train_epoch`` loop body. src, tgt [B,M]; the loss covers every position."""
    encoder_optimizer.zero_grad()
    decoder_optimizer.zero_grad()
    encoder_outputs, encoder_hidden = encoder(src)
    log_probs = decoder(encoder_outputs, encoder_hidden, tgt)
    loss = criterion(log_probs.view(-1, log_probs.size(-1)), tgt.view(-1))
    loss.backward()
    encoder_optimizer.step()
    decoder_optimizer.step()
    return loss.item()
