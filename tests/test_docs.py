"""Documentation that cannot go stale: every shell and Python block of README.md and bench/*.md marked
runnable is run, in a shortened form, and must exit 0 and print what it quotes.

Marking: the line ``<!-- runnable -->`` right before a fenced ```bash or ```python block. Blocks of one
document run in order in one scratch directory (a later block may use an earlier one's output), which
holds small inputs under the names the documents use (shakespeare.txt, held_out.txt, fra.txt) and an
empty bench/ (so that a command writing bench/x.png writes there, never into the checkout).
Quoting: a comment ``# out: TEXT`` in a runnable block quotes the block's output. TEXT must be found in
what the block prints, in the order of the comments, with any number standing for any number, ``…``
for anything, and any run of spaces for any whitespace (so one quoted line may stand for several
printed ones): the format is checked, not the figures of the documented run. A further ``#`` ends the
quotation (``# out: 5.96e-08  # float32 rounding``).

Shortening (shell blocks, so that all documents run in well under a minute): ``rnnkit`` and ``python``
are this interpreter (``python -m rnnkit.cli``, PYTHONPATH at the rnnkit the tests import) and ``python bench/`` the
checkout's bench/; ``--steps N`` becomes ``--steps max(2, N // 500)``, ``--minutes M`` becomes
``--steps max(2, 4 M)``, ``--eval-every N`` becomes ``--eval-every 100000`` (one evaluation, at the end),
and ``train-seq2seq --task`` gets ``--train-size 1000 --val-size 50 --test-size 50``. `shorten` does it;
`test_shortening` shows it on examples.
"""
import os
import re
import subprocess
import sys
import time
from typing import List, NamedTuple

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MARKER = "<!-- runnable -->"
DOCS = ["README.md"] + sorted(os.path.relpath(os.path.join(d, f), ROOT)
                              for d, _, files in os.walk(os.path.join(ROOT, "bench")) for f in files if f.endswith(".md"))


class Block(NamedTuple):
    doc: str
    line: int  # of the opening fence, 1-based
    lang: str
    code: str


def runnable_blocks(doc: str) -> List[Block]:
    """The marked blocks of ``doc`` (a path relative to the checkout); ValueError for a marker that
    does not stand right before a bash or python fence."""
    lines = open(os.path.join(ROOT, doc), encoding="utf-8").read().splitlines()
    out = []
    for i, line in enumerate(lines):
        if line.strip() != MARKER:
            continue
        fence = lines[i + 1].strip() if i + 1 < len(lines) else ""
        m = re.fullmatch(r"```(bash|sh|python)", fence)
        if not m:
            raise ValueError(f"{doc}:{i + 1}: {MARKER} must stand right before a ```bash or ```python block")
        end = next(j for j in range(i + 2, len(lines)) if lines[j].strip() == "```")
        out.append(Block(doc, i + 2, "python" if m.group(1) == "python" else "bash", "\n".join(lines[i + 2:end])))
    return out


_NUMBER = r"[-+]?(?:\d[\d,]*)(?:\.\d+)?(?:[eE][-+]?\d+)?|nan|inf"


def quoted_pattern(text: str) -> str:
    """The regular expression of a ``# out:`` quotation (see the module docstring)."""
    parts = []
    for token in re.findall(r"…|[-+]?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?|\s+|[^\s\d…]+|.", text):
        if token == "…":
            parts.append(r".*?")
        elif token.isspace():
            parts.append(r"\s+")
        elif re.fullmatch(r"[-+]?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?", token):
            parts.append(f"(?:{_NUMBER})")
        else:
            parts.append(re.escape(token))
    return "".join(parts)


def quotations(code: str) -> List[str]:
    return [m.group(1).split("#")[0].strip() for m in re.finditer(r"#\s*out:\s*(.+)$", code, re.M)]


def shorten(code: str) -> str:
    """The shell block as the test runs it (see the module docstring)."""
    def steps(m):
        return f"--steps {max(2, int(m.group(1)) // 500)}"

    def minutes(m):
        return f"--steps {max(2, round(4 * float(m.group(1))))}"

    code = re.sub(r"--steps\s+(\d+)", steps, code)
    code = re.sub(r"--minutes\s+([\d.]+)", minutes, code)
    code = re.sub(r"--eval-every\s+\d+", "--eval-every 100000", code)
    lines = []
    for line in code.split("\n"):
        if re.search(r"\btrain-seq2seq\b.*--task\b", line) and "--train-size" not in line:
            body, _, comment = line.partition(" #")
            cont = body.rstrip().endswith("\\")
            body = body.rstrip().rstrip("\\").rstrip()
            line = body + " --train-size 1000 --val-size 50 --test-size 50" + (" \\" if cont else "") + (
                f"  #{comment}" if comment else "")
        lines.append(line)
    code = "\n".join(lines)
    return re.sub(r"(?<![\w/$])python bench/(\S+)", lambda m: f'python "{ROOT}/bench/{m.group(1)}"', code)


def test_shortening():
    assert shorten("rnnkit train-charlm --text a.txt --steps 5000 --out s") == \
        "rnnkit train-charlm --text a.txt --steps 10 --out s"
    assert shorten("rnnkit train-seq2seq --task dates --minutes 3 --eval-every 500 --out d   # note") == \
        "rnnkit train-seq2seq --task dates --steps 12 --eval-every 100000 --out d --train-size 1000 --val-size 50 " \
        "--test-size 50  # note"
    assert shorten("python bench/seq2seq_reverse.py a b --out x.png") == \
        f'python "{ROOT}/bench/seq2seq_reverse.py" a b --out x.png'
    assert re.fullmatch(quoted_pattern("exact_match: 1.0000  token_acc: 0.99  examples: 2000"),
                        "exact_match: 0.0312\ntoken_acc: 0.4411\nexamples: 50")
    assert re.fullmatch(quoted_pattern('{"bpc": …, "chars": 12}'), '{"bpc": 4.1, "nats": 2, "chars": 7}')
    assert not re.fullmatch(quoted_pattern("exact_match: 1.0000"), "exact match: 1.0000")


def _inputs(directory: str) -> None:
    """Small inputs under the names the documents use, and a bench/ for the pictures they draw."""
    os.makedirs(os.path.join(directory, "bench"))
    play = "".join(f"ROMEO:\nWhat light through yonder window {i} breaks?\nJULIET:\nIt is the east, and {i % 7} "
                   f"is the sun.\n\n" for i in range(400))
    with open(os.path.join(directory, "shakespeare.txt"), "w") as f:
        f.write(play)
    with open(os.path.join(directory, "held_out.txt"), "w") as f:
        f.write(play[:3000])
    nouns = [("cat", "chat"), ("dog", "chien"), ("house", "maison"), ("book", "livre"), ("car", "voiture"),
             ("tree", "arbre"), ("bird", "oiseau"), ("boat", "bateau")]
    verbs = [("see", "vois"), ("want", "veux"), ("have", "ai"), ("like", "aime"), ("draw", "dessine")]
    adjs = [("big", "grand"), ("small", "petit"), ("red", "rouge"), ("old", "vieux"), ("new", "nouveau")]
    with open(os.path.join(directory, "fra.txt"), "w") as f:
        for ve, vf in verbs:
            for ne, nf in nouns:
                for ae, af in adjs:
                    f.write(f"I {ve} the {ae} {ne}.\tJe {vf} le {nf} {af}.\n")


@pytest.mark.parametrize("doc", [d for d in DOCS if runnable_blocks(d)])
def test_runnable_blocks_run_and_print_what_they_quote(doc, tmp_path):
    blocks = runnable_blocks(doc)
    _inputs(str(tmp_path))
    import rnnkit  # the blocks run the rnnkit these tests import (installed, or this checkout's python/)

    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(rnnkit.__file__)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([package_dir] +
                                                       os.environ.get("PYTHONPATH", "").split(os.pathsep)),
           "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    for block in blocks:
        if block.lang == "python":
            argv, script = [sys.executable, "-"], block.code
        else:
            prelude = (f'set -euo pipefail\nrnnkit() {{ "{sys.executable}" -m rnnkit.cli "$@"; }}\n'
                       f'python() {{ "{sys.executable}" "$@"; }}\n')
            argv, script = ["bash", "-c", prelude + shorten(block.code)], None
        t0 = time.monotonic()
        r = subprocess.run(argv, input=script, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        print(f"{block.doc}:{block.line}: {time.monotonic() - t0:.1f} s")
        where = f"{doc}:{block.line} ({block.lang} block)"
        assert r.returncode == 0, f"{where} exited {r.returncode}:\n{r.stderr[-3000:]}"
        assert "Traceback" not in r.stderr, f"{where}:\n{r.stderr[-3000:]}"
        at = 0
        for quote in quotations(block.code):
            m = re.compile(quoted_pattern(quote), re.S).search(r.stdout, at)
            assert m, f"{where}: the output does not show the quoted '{quote}':\n{r.stdout[-3000:]}"
            at = m.end()


def test_every_document_with_commands_has_runnable_blocks():
    """The documents that show commands in code blocks mark them (a block left unmarked is prose: an
    install line, or a sample of output)."""
    for doc in ("README.md", os.path.join("bench", "hosts", "amd-epyc", "SEQ2SEQ.md")):
        assert len(runnable_blocks(doc)) >= 1, doc
    assert sum(len(runnable_blocks(d)) for d in DOCS) >= 5
