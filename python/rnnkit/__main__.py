"""``python -m rnnkit``: the ``rnnkit`` command (``python -m rnnkit info`` and so on); with no arguments
it prints ``rnnkit info``, the report a bug needs."""

import sys

from .cli import main

sys.exit(main(sys.argv[1:] or ["info"]))
