"""The cells page: one self-contained HTML file (inline CSS, no script, no network) showing, for each of
the best units, its feature and scores and the text with each character's background coloured by the
unit's activation after it (Karpathy, Johnson and Fei-Fei 2015, "Visualizing and Understanding
Recurrent Networks").

Colours are diverging (blue negative, white zero, red positive) over the tanh range [-1, 1] in
`LEVELS` steps; an LSTM's cell state is shown as tanh(c), the value its output gate reads. Runs of
characters of one colour share one short element (``<i class=v7>``), so a 15,000-character text shown for
12 units is ~1.5 MB.
Spaces and tabs keep their width, newlines break lines as in the source and show as a faint ``↵``
carrying the newline's own colour; where a 0/1 feature holds, the characters are underlined.
"""
from __future__ import annotations

import datetime
import html
from typing import Dict, List, Optional, Sequence

import numpy as np

from .._atomic import atomic_write
from .features import Feature
from .scoring import UnitScore

__all__ = ["render", "write", "LEVELS"]

#: Colour steps over [-1, 1] (odd, so that 0 has a step of its own: white): 0.1 apart.
LEVELS = 21

# Diverging palette (ColorBrewer RdBu ends, deepened): negative end, middle, positive end.
_NEG, _MID, _POS = (33, 102, 172), (255, 255, 255), (178, 24, 43)


def _colour(level: int) -> str:
    x = 2 * level / (LEVELS - 1) - 1
    end = _POS if x > 0 else _NEG
    t = abs(x) ** 0.85  # a little more colour near zero, where most characters are
    r, g, b = (round(m + (e - m) * t) for m, e in zip(_MID, end))
    return f"#{r:02x}{g:02x}{b:02x}"


def _css() -> str:
    levels = "\n".join(
        f".v{k}{{background:{_colour(k)}{';color:#fff' if abs(2 * k / (LEVELS - 1) - 1) > 0.62 else ''}}}"
        for k in range(LEVELS))
    return _STYLE + levels


_STYLE = """
:root{--ink:#1d2330;--muted:#667085;--line:#e4e7ec;--card:#fff;--bg:#f5f6f8;--accent:#3a4a6b}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);
 font:15px/1.5 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
header{background:linear-gradient(120deg,#1d2330,#3a4a6b);color:#fff;padding:28px 40px 22px}
header h1{margin:0 0 4px;font-size:26px;font-weight:650;letter-spacing:.2px}
header p{margin:2px 0;color:#cfd6e4;font-size:14px}
header code{color:#fff;background:rgba(255,255,255,.12);padding:1px 6px;border-radius:4px}
main{max-width:1320px;margin:0 auto;padding:22px 40px 60px}
.legend{display:flex;align-items:center;gap:14px;margin:4px 0 18px;color:var(--muted);font-size:13px}
.bar{width:320px;height:14px;border-radius:7px;border:1px solid var(--line);
 background:linear-gradient(90deg,#2166ac,#fff 50%,#b2182b)}
.under{box-shadow:inset 0 -2px 0 #1d2330;padding:0 3px}
table.summary{border-collapse:collapse;width:100%;background:var(--card);border-radius:10px;overflow:hidden;
 box-shadow:0 1px 3px rgba(16,24,40,.08);font-size:14px;margin-bottom:26px}
.summary th,.summary td{padding:7px 12px;text-align:left;border-bottom:1px solid var(--line)}
.summary th{background:#fafbfc;color:var(--muted);font-weight:600;font-size:12px;text-transform:uppercase;
 letter-spacing:.5px}
.summary td.num{font-variant-numeric:tabular-nums;text-align:right}
.summary a{color:var(--accent);text-decoration:none;font-weight:600}
.card{background:var(--card);border-radius:12px;box-shadow:0 1px 3px rgba(16,24,40,.1);margin:0 0 26px;
 overflow:hidden}
.card h2{margin:0;padding:14px 20px 4px;font-size:18px;font-weight:650}
.card h2 .feat{color:var(--accent)}
.meta{padding:0 20px 12px;color:var(--muted);font-size:13.5px;border-bottom:1px solid var(--line)}
.pill{display:inline-block;padding:1px 9px;border-radius:10px;background:#eef1f6;color:var(--ink);
 font-weight:600;font-variant-numeric:tabular-nums;margin-right:6px}
.pill.pos{background:#fbe3e6;color:#8c1526}.pill.neg{background:#e1ecf7;color:#174a80}
pre.text{margin:0;padding:14px 20px;max-height:34em;overflow:auto;white-space:pre;tab-size:8;-moz-tab-size:8;
 font:13px/1.42 ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono","Liberation Mono",monospace}
pre.text i{font-style:normal}
.nl{opacity:.45}
.f{box-shadow:inset 0 -2px 0 rgba(29,35,48,.85)}
footer{color:var(--muted);font-size:12px;text-align:center;padding:10px}
"""


def _levels(values: np.ndarray) -> np.ndarray:
    return np.rint((np.clip(values, -1, 1) + 1) / 2 * (LEVELS - 1)).astype(int)


def _text_html(text: str, levels: np.ndarray, flags: Optional[np.ndarray]) -> str:
    """The text as runs of one colour (and one feature flag); newlines as a faint ↵ and a line break."""
    out: List[str] = []
    n = len(text)
    flags = np.zeros(n, bool) if flags is None else flags
    key = levels * 2 + flags
    # Runs end where the key changes and at every newline (which gets an element of its own).
    is_nl = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32) == 10
    cut = np.flatnonzero((key[1:] != key[:-1]) | is_nl[1:] | is_nl[:-1]) + 1
    bounds = np.concatenate([[0], cut, [n]])
    for a, b in zip(bounds[:-1], bounds[1:]):
        cls = f'"v{levels[a]} f"' if flags[a] else f"v{levels[a]}"
        if is_nl[a]:
            out.append(f'<i class={cls}><i class=nl>\u21b5</i></i>\n')
        else:
            out.append(f'<i class={cls}>{html.escape(text[a:b], quote=False)}</i>')
    return "".join(out)


def render(text: str, acts: np.ndarray, rows: Sequence[UnitScore], features: Sequence[Feature],
           title: str = "Interpretable cells", info: Optional[Dict[str, str]] = None,
           squash: bool = False, shown: str = "") -> str:
    """The page as a string. ``acts`` (N, L, U) as scored; ``rows`` the units to show, in order;
    ``features`` those they were scored against (for descriptions and the underlines of 0/1 ones);
    ``info`` label -> value lines for the header; ``squash`` shows tanh of the activations (an LSTM's
    cell state), else they are clipped to [-1, 1]; ``shown`` names the coloured value in the legend
    (default: "tanh of the cell state" with ``squash``, else "activation")."""
    acts = np.asarray(acts)
    if acts.ndim != 3 or acts.shape[0] != len(text):
        raise ValueError(f"activations must have shape ({len(text)}, layers, units), got {acts.shape}")
    by_name = {f.name: f for f in features}
    shown = shown or ("tanh of the cell state" if squash else "activation")
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
             f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
             f"<title>{html.escape(title)}</title><style>{_css()}</style></head><body>",
             f"<header><h1>{html.escape(title)}</h1>"]
    for label, value in (info or {}).items():
        parts.append(f"<p>{html.escape(label)}: <code>{html.escape(str(value))}</code></p>")
    parts.append("</header><main>")
    parts.append(f'<div class="legend"><span>\u22121</span><div class="bar"></div><span>+1</span>'
                 f"<span>each character's background: the unit's {shown} after reading it</span>"
                 f'<span class="under">underlined</span><span>where a yes/no feature holds</span></div>')
    parts.append('<table class="summary"><tr><th>#</th><th>unit</th><th>feature</th>'
                 '<th style="text-align:right">correlation</th><th style="text-align:right">threshold accuracy'
                 '</th><th style="text-align:right">majority baseline</th></tr>')
    for i, r in enumerate(rows):
        acc = f"{r.accuracy:.3f}" if r.accuracy is not None else "\u2013"
        base = f"{r.baseline:.3f}" if r.baseline is not None else "\u2013"
        parts.append(f'<tr><td>{i + 1}</td><td><a href="#u{i}">layer {r.layer} \u00b7 unit {r.unit}</a></td>'
                     f"<td>{html.escape(r.feature)}</td><td class=\"num\">{r.correlation:+.3f}</td>"
                     f'<td class="num">{acc}</td><td class="num">{base}</td></tr>')
    parts.append("</table>")
    for i, r in enumerate(rows):
        values = acts[:, r.layer, r.unit].astype(np.float64)
        shown_values = np.tanh(values) if squash else values
        f = by_name.get(r.feature)
        flags = (f.values > 0) if f is not None and f.discrete else None
        sign = "pos" if r.correlation >= 0 else "neg"
        scores = f'<span class="pill {sign}">r = {r.correlation:+.3f}</span>'
        if r.accuracy is not None:
            scores += (f'<span class="pill">threshold accuracy {r.accuracy:.3f}</span>'
                       f'<span class="pill">baseline {r.baseline:.3f}</span>')
        desc = html.escape(f.description) if f is not None else ""
        parts.append(f'<section class="card" id="u{i}"><h2>layer {r.layer} \u00b7 unit {r.unit} \u2014 '
                     f'<span class="feat">{html.escape(r.feature)}</span></h2>'
                     f'<div class="meta">{scores} {desc}; range {values.min():+.2f} to {values.max():+.2f}</div>'
                     f'<pre class="text">{_text_html(text, _levels(shown_values), flags)}</pre></section>')
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts.append(f"<footer>rnnkit cells \u00b7 {stamp}</footer></main></body></html>\n")
    return "".join(parts)


def write(path: str, page: str) -> None:
    """Write ``page`` (from `render`) to ``path`` atomically, UTF-8."""
    atomic_write(path, lambda f: f.write(page.encode("utf-8")))
