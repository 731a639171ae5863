"""``python -m rnnkit.bench``: the same as ``rnnkit bench``."""

import sys

from .cli import main

sys.exit(main(prog="python -m rnnkit.bench"))
