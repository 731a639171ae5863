"""Features of a text, one value per character, for scoring a model's units against (`rnnkit.insight.scoring`).

Every value describes the text after its character has been read, as a char-LM's state after that
character does: the opening quote of a string is inside the string and its closing quote is not; an
opening bracket already counts in the depth, a closing one no longer does; a newline starts a new line
(position 0, at the line's start).

Code features (`code_features`): in_string, in_string_single / in_string_double (the quote character),
in_string_triple, in_comment, bracket_depth, indent, position_in_line, at_line_start. Prose features
(`prose_features`): in_quotes, in_parens, position_in_line, position_in_word.

Strings and comments of code come from Python's own `tokenize`, which knows prefixes, escapes, triple
quotes and f-strings. Text that does not tokenize (a slice cut inside a string, inconsistent dedents, C
or JavaScript) is read by tokenize up to the last complete logical line before the first error, and the
rest by `scan_code`, a character scanner of ``'``/``"``/triple-quoted strings with backslash escapes and
``#`` comments (a ``//`` or ``/*`` comment is not one); `Features.method` says which ran, where and why.
"""
from __future__ import annotations

import io
import re
import tokenize
from typing import Dict, List, NamedTuple, Optional, Tuple

import numpy as np

__all__ = ["Feature", "Features", "StringSpan", "code_features", "prose_features", "text_features", "looks_like_code",
           "scan_code", "TAB_SIZE"]

#: Columns a tab advances the indentation to (the next multiple of), as Python's tokenizer counts.
TAB_SIZE = 8

_OPEN, _CLOSE = "([{", ")]}"


class Feature(NamedTuple):
    """One feature: ``values`` (float64, one per character); ``discrete`` for 0/1 features, which are
    also scored by a threshold classifier's accuracy."""

    name: str
    values: np.ndarray
    discrete: bool
    description: str


class Features(NamedTuple):
    """The features of a text, in a fixed order, and how its strings and comments were found: ``method``
    is "tokenize", "scanner" (no text given to tokenize), or "tokenize+scanner (...)" naming the
    character where the scanner took over and tokenize's error."""

    kind: str  # "code" or "prose"
    features: List[Feature]
    method: str

    def by_name(self) -> Dict[str, Feature]:
        return {f.name: f for f in self.features}


# ------------------------------------------------------------------ strings and comments of code

class StringSpan(NamedTuple):
    """A string literal: ``start`` its opening quote (after any prefix), ``end`` one past its closing quote
    or where an unterminated one stops, ``quote`` the quote (one or three ' or " characters), ``closed`` False when
    unterminated."""

    start: int
    end: int
    quote: str
    closed: bool


class _Spans(NamedTuple):
    strings: List[StringSpan]
    comments: List[Tuple[int, int]]  # ['#', end of line)


def _line_offsets(text: str) -> List[int]:
    offsets, pos = [0], 0
    for line in text.splitlines(keepends=True):
        pos += len(line)
        offsets.append(pos)
    return offsets


def _quote_of(token: str, start: int) -> Tuple[int, str]:
    """Offset of the opening quote within a string token (after its prefix) and the quote."""
    k = 0
    while k < len(token) and token[k] not in "'\"":
        k += 1
    q = token[k:k + 3]
    return start + k, (q if q in ("'''", '"""') else token[k:k + 1])


def _tokenize_spans(text: str) -> Tuple[_Spans, int, Optional[str]]:
    """The strings and comments tokenize finds, the offset up to which they are trusted (the end of the
    last complete logical line before the first error, or len(text)) and the error, or None."""
    offsets = _line_offsets(text)
    spans = _Spans([], [])
    pending = _Spans([], [])  # of the current logical line: kept once its NEWLINE arrives
    trusted = 0
    fstring_starts: List[Tuple[int, str]] = []
    fstring_start, fstring_end = getattr(tokenize, "FSTRING_START", None), getattr(tokenize, "FSTRING_END", None)

    def at(pos: Tuple[int, int]) -> int:
        return offsets[pos[0] - 1] + pos[1]

    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            start, end = at(tok.start), at(tok.end)
            if tok.type == tokenize.STRING:
                q_start, quote = _quote_of(tok.string, start)
                pending.strings.append(StringSpan(q_start, end, quote, True))
            elif fstring_start is not None and tok.type == fstring_start:
                fstring_starts.append(_quote_of(tok.string, start))
            elif fstring_end is not None and tok.type == fstring_end and fstring_starts:
                q_start, quote = fstring_starts.pop()
                pending.strings.append(StringSpan(q_start, end, quote, True))
            elif tok.type == tokenize.COMMENT:
                pending.comments.append((start, end))
            elif tok.type == tokenize.ERRORTOKEN and tok.string.strip():
                raise tokenize.TokenError(f"cannot read {tok.string!r} at line {tok.start[0]}", tok.start)
            elif tok.type in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER) and not fstring_starts:
                spans.strings.extend(pending.strings)
                spans.comments.extend(pending.comments)
                pending = _Spans([], [])
                trusted = end if tok.type != tokenize.ENDMARKER else len(text)
    except (tokenize.TokenError, SyntaxError) as e:  # IndentationError is a SyntaxError
        return spans, trusted, f"{type(e).__name__}: {e.args[0] if e.args else e}"
    return spans, len(text), None


def scan_code(text: str, start: int = 0) -> Tuple[List[StringSpan], List[Tuple[int, int]]]:
    """Strings (`StringSpan`) and comments ([#, end of line)) of ``text[start:]`` by a
    character scanner: ``'``, ``"``, ``'''`` and ``\"\"\"`` strings with backslash escapes (a one-quote
    string also ends at its line's end, as an unterminated one does in Python), ``#`` to the end of the
    line. Offsets are into ``text``. What `code_features` falls back to when tokenize fails."""
    strings, comments = [], []
    i, n = start, len(text)
    while i < n:
        ch = text[i]
        if ch == "#":
            j = text.find("\n", i)
            j = n if j < 0 else j
            comments.append((i, j))
            i = j
        elif ch in "'\"":
            quote = text[i:i + 3] if text[i:i + 3] in ("'''", '"""') else ch
            j, closed = i + len(quote), False
            while j < n:
                if text[j] == "\\":
                    j += 2
                elif text.startswith(quote, j):
                    j, closed = j + len(quote), True
                    break
                elif text[j] == "\n" and len(quote) == 1:
                    break
                else:
                    j += 1
            j = min(j, n)
            strings.append(StringSpan(i, j, quote, closed))
            i = j
        else:
            i += 1
    return strings, comments


def _string_comment_spans(text: str) -> Tuple[_Spans, str]:
    spans, trusted, error = _tokenize_spans(text)
    if error is None:
        return spans, "tokenize"
    strings, comments = scan_code(text, trusted)
    spans.strings.extend(strings)
    spans.comments.extend(comments)
    line = text.count("\n", 0, trusted) + 1
    how = "scanner" if trusted == 0 else "tokenize+scanner"
    return spans, f"{how} (the scanner from character {trusted}, line {line}; tokenize: {error})"


# ------------------------------------------------------------------ per-character features

def _mark(n: int, spans) -> np.ndarray:
    """0/1 per character: 1 on [start, end) of each span."""
    out = np.zeros(n)
    for s in spans:
        out[s[0]:s[1]] = 1
    return out


def _inside(n: int, strings: List[StringSpan]) -> np.ndarray:
    """0/1 per character: inside a string after reading it, from the opening quote to the one before the
    last closing quote character (to the end of an unterminated string)."""
    return _mark(n, [(s.start, s.end - s.closed) for s in strings])


def _line_positions(text: str) -> Tuple[np.ndarray, np.ndarray]:
    """Characters read on the current line after each character (0 after a newline), and whether no
    visible character has been read on it yet (a newline, and the indentation after it)."""
    n = len(text)
    chars = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    newline = chars == ord("\n")
    idx = np.arange(n)
    last_nl = np.maximum.accumulate(np.where(newline, idx, -1))
    pos = idx - last_nl  # after a newline: 0; the first character of a line: 1
    blank = (chars == ord(" ")) | (chars == ord("\t")) | (chars == ord("\r")) | (chars == ord("\f"))
    visible = ~(blank | newline)
    # visible characters read on this line so far
    seen = np.cumsum(visible) - np.maximum.accumulate(np.where(newline, np.cumsum(visible), 0))
    return pos.astype(float), ((seen == 0) | newline).astype(float)


def _indent(text: str) -> np.ndarray:
    """The indentation (columns) of the line being read, known from its first visible character on;
    before that (the newline, the leading whitespace, blank lines) the previous such line's."""
    out = np.zeros(len(text))
    current, i = 0.0, 0
    for line in text.splitlines(keepends=True):
        stripped = line.lstrip(" \t\f")
        lead = len(line) - len(stripped)
        if stripped.strip():
            width = len(line[:lead].replace("\f", "").expandtabs(TAB_SIZE))
            out[i:i + lead] = current
            current = float(width)
            out[i + lead:i + len(line)] = current
        else:
            out[i:i + len(line)] = current
        i += len(line)
    return out


def _depth(text: str, skip: np.ndarray, opening: str, closing: str) -> np.ndarray:
    """Open brackets after each character, those inside ``skip`` (strings, comments) not counted; a
    closing bracket with none open counts nothing."""
    step = np.zeros(len(text))
    for k, ch in enumerate(text):
        if skip[k]:
            continue
        if ch in opening:
            step[k] = 1
        elif ch in closing:
            step[k] = -1
    depth = np.cumsum(step)
    # Unbalanced closers: clamp at zero by subtracting the running minimum below zero.
    return depth - np.minimum(np.minimum.accumulate(depth), 0)


def code_features(text: str) -> Features:
    """The code features of ``text`` (see the module docstring), in the order in_string, the three
    quote kinds, in_comment, bracket_depth, indent, position_in_line, at_line_start."""
    n = len(text)
    spans, method = _string_comment_spans(text)
    by_quote = {q: [s for s in spans.strings if s.quote == q] for q in ("'", '"', "'''", '"""')}
    in_string = _inside(n, spans.strings)
    in_comment = _mark(n, spans.comments)
    skip = (_mark(n, spans.strings) > 0) | (in_comment > 0)  # the closing quotes too
    position, line_start = _line_positions(text)
    feats = [
        Feature("in_string", in_string, True, "inside a string literal (opening quote to before the closing one)"),
        Feature("in_string_single", _inside(n, by_quote["'"] + by_quote["'''"]), True, "inside a ' or ''' string"),
        Feature("in_string_double", _inside(n, by_quote['"'] + by_quote['"""']), True, 'inside a " or """ string'),
        Feature("in_string_triple", _inside(n, by_quote["'''"] + by_quote['"""']), True,
                "inside a triple-quoted string (docstrings)"),
        Feature("in_comment", in_comment, True, "inside a # comment"),
        Feature("bracket_depth", _depth(text, skip, _OPEN, _CLOSE), False,
                "open ( [ { outside strings and comments"),
        Feature("indent", _indent(text), False, "indentation of the current line, in columns"),
        Feature("position_in_line", position, False, "characters read on the current line"),
        Feature("at_line_start", line_start, True, "nothing visible read yet on the line (newline, indentation)"),
    ]
    return Features("code", feats, method)


_QUOTES_OPEN, _QUOTES_CLOSE = "\u201c", "\u201d"


def _in_quotes(text: str) -> np.ndarray:
    """Inside "..." or \u201c...\u201d: from the opening quote to before the closing one. A straight
    double quote toggles; a paragraph break (blank line) closes an unclosed quote."""
    out = np.zeros(len(text))
    inside = False
    for k, ch in enumerate(text):
        if ch == '"':
            inside = not inside
        elif ch == _QUOTES_OPEN:
            inside = True
        elif ch == _QUOTES_CLOSE:
            inside = False
        elif ch == "\n" and text.startswith("\n", k + 1):
            inside = False
        out[k] = inside
    return out


def prose_features(text: str) -> Features:
    """The prose features of ``text``: in_quotes, in_parens, position_in_line, position_in_word
    (letters, digits and apostrophes read since the word began; 0 elsewhere)."""
    position, _ = _line_positions(text)
    word = np.zeros(len(text))
    for m in re.finditer(r"[\w'\u2019]+", text):
        word[m.start():m.end()] = np.arange(1, m.end() - m.start() + 1)
    parens = _depth(text, np.zeros(len(text), bool), "(", ")")
    feats = [
        Feature("in_quotes", _in_quotes(text), True, "inside double quotes"),
        Feature("in_parens", (parens > 0).astype(float), True, "inside parentheses"),
        Feature("position_in_line", position, False, "characters read on the current line"),
        Feature("position_in_word", word, False, "characters read of the current word"),
    ]
    return Features("prose", feats, "scanner")


def looks_like_code(text: str) -> bool:
    """Whether ``text`` reads as source code rather than prose: brackets, operators and underscores
    make up 3% or more of its characters (Python source: ~8%, English prose: well under 1%), or a fifth
    of its lines start indented."""
    if not text:
        return False
    symbols = sum(text.count(ch) for ch in "()[]{}=_;#<>*")
    lines = [ln for ln in text.split("\n") if ln.strip()]
    indented = sum(ln[:1] in (" ", "\t") for ln in lines)
    return symbols / len(text) >= 0.03 or (bool(lines) and indented / len(lines) >= 0.2)


def text_features(text: str, kind: str = "auto") -> Features:
    """`code_features` or `prose_features` of ``text``; kind "auto" decides by `looks_like_code`."""
    if kind not in ("auto", "code", "prose"):
        raise ValueError(f"kind must be 'auto', 'code' or 'prose', got {kind!r}")
    if not text:
        raise ValueError("features need a non-empty text")
    if kind == "auto":
        kind = "code" if looks_like_code(text) else "prose"
    return code_features(text) if kind == "code" else prose_features(text)
