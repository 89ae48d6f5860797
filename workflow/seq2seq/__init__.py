"""seq2seq: GRU encoder-decoder translation with attention, the package behind the Snakemake pipeline."""

__version__ = "0.1.0"
