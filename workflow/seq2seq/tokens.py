"""The special tokens every vocabulary shares, and sentencepiece's word-start mark: defined here once, imported
by the vocabularies, the models, search, the figures and the explorer (whose page receives them with its data).
No imports: the model code reads these without pulling in the corpus or settings code."""

PAD, SOS, EOS, UNK = "<pad>", "<sos>", "<eos>", "<unk>"
SPECIALS: tuple[str, ...] = (PAD, SOS, EOS, UNK)
PAD_INDEX, SOS_INDEX, EOS_INDEX, UNK_INDEX = 0, 1, 2, 3
WORD_START = "\u2581"  # sentencepiece's mark of a piece that begins a word
