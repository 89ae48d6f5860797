"""``python -m seq2seq STAGE ...``: see :mod:`seq2seq.cli`."""

import sys

from .cli import main

sys.exit(main())
