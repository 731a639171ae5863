"""What the character-model commands of ``rnnkit`` share: ``train-charlm``, ``sample`` and
``eval-charlm`` are each a module ``cmd_*`` with ``main(argv, prog) -> int`` for `rnnkit.cli`; the
parser, option types and error handling are `rnnkit.cliutil`'s, shared with the other commands.

Bad input (a missing or empty file, a text too short, a directory without a checkpoint, a corrupt
checkpoint, a bad size) ends with one line on stderr and exit status 1 (2 for a bad option), never a
traceback.
"""

from ..cliutil import Parser, non_negative_int, positive_float, positive_int, run

__all__ = ["Parser", "positive_int", "non_negative_int", "positive_float", "run"]
