"""rnnkit cells: text features on hand-made texts (strings, comments, brackets, indentation, text that does
not tokenize, prose), unit scoring (against brute force, and on a model built so that one unit copies a
feature), CharLM.activations against the layers' own forward, the HTML page, and the command."""
import html
import html.parser
import json

import numpy as np
import pytest

import rnnkit.charlm.model as charlm_model
from rnnkit import kernels
from rnnkit.charlm import CharLM, Vocab
from rnnkit.cli import main as cli
from rnnkit.insight.features import code_features, looks_like_code, prose_features, scan_code, text_features
from rnnkit.insight.page import render
from rnnkit.insight.scoring import correlations, rank, score_units, threshold_accuracy

pytestmark = pytest.mark.usefixtures("one_thread")


def bits(values) -> str:
    return "".join(str(int(v)) for v in values)


def feature(text, name, kind="code"):
    return (code_features(text) if kind == "code" else prose_features(text)).by_name()[name].values


# ------------------------------------------------------------------ features


def test_strings_and_their_quotes():
    t = "x = 'ab' + \"c#\"\n"
    assert bits(feature(t, "in_string")) == "0000111000011100"
    assert bits(feature(t, "in_string_single")) == "0000111000000000"
    assert bits(feature(t, "in_string_double")) == "0000000000011100"
    assert not feature(t, "in_comment").any()  # the # is inside a string
    assert code_features(t).method == "tokenize"


def test_prefixes_escapes_and_triple_quotes():
    t = "s = r'a' + 'it\\'s'\nd = \"\"\"x\n(y\"\"\"\n"
    f = code_features(t).by_name()
    # r'a': the prefix is not inside, the quote is; 'it\'s' holds an escaped quote.
    assert bits(f["in_string"].values[:19]) == "0000011000011111100"
    triple = f["in_string_triple"].values
    start = t.index('"""')
    end = t.index('"""', start + 3) + 3
    assert triple[start:end - 1].all() and not triple[end - 1:].any() and not triple[:start].any()
    assert f["in_string_double"].values[start:end - 1].all()
    assert not f["bracket_depth"].values.any()  # the ( is inside the docstring


def test_comments():
    t = "a = f(1)  # call (it\nb = '#'\n"
    c = feature(t, "in_comment")
    hash_at = t.index("#")
    assert c[hash_at:t.index("\n")].all() and not c[:hash_at].any() and not c[t.index("\n"):].any()
    depth = feature(t, "bracket_depth")
    assert depth[t.index("(") + 1] == 1 and depth.max() == 1 and depth[-1] == 0  # the comment's ( not counted


def test_nested_brackets():
    t = "f(a[1, {2: (3)}])\n"
    assert bits(feature(t, "bracket_depth")) == "011222233334432100"


def test_closing_brackets_without_opening_ones_count_nothing():
    t = "x)]\ny = (1\n"
    depth = feature(t, "bracket_depth")
    assert depth.min() == 0 and depth[-1] == 1


def test_indentation_position_and_line_start():
    t = "if a:\n    b\n\n  c\n"
    f = code_features(t).by_name()
    assert bits(f["position_in_line"].values) == "12345" + "0" + "12345" + "0" + "0" + "123" + "0"
    assert bits(f["at_line_start"].values) == "00000" + "1" + "11110" + "1" + "1" + "110" + "1"
    # The indent switches at a line's first visible character; blank lines keep the last one.
    assert list(f["indent"].values) == [0] * 10 + [4] * 5 + [2, 2]


def test_tabs_indent_to_multiples_of_eight():
    assert feature("if a:\n\tb\n", "indent")[-2] == 8


def test_unterminated_string_falls_back_to_the_scanner():
    t = "x = (1)\ns = '''open (\nstill ( inside\n"
    f = code_features(t)
    # (the error's wording differs between Python versions: 3.12's tokenize reads with the C tokenizer)
    assert f.method.startswith("tokenize+scanner (the scanner from character 8, line 2; tokenize: ")
    s = f.by_name()["in_string"].values
    assert not s[:t.index("'")].any() and s[t.index("'"):].all()
    assert f.by_name()["bracket_depth"].values[t.index("'"):].max() == 0  # brackets inside the string


def test_inconsistent_dedent_falls_back_from_the_last_good_line():
    t = "if a:\n        b = 1\n    c = \"q\"  # z\n"
    f = code_features(t)
    assert f.method.startswith("tokenize+scanner (the scanner from character 20, line 3;")
    q = t.index('"')
    assert bits(f.by_name()["in_string"].values[q - 1:q + 4]) == "01100"
    assert f.by_name()["in_comment"].values[t.index("#"):t.index("#") + 3].all()


def test_a_lone_apostrophe_does_not_tokenize():
    t = "print(1)\nthat's (it)\n"
    f = code_features(t)
    assert "scanner" in f.method
    # The scanner reads the apostrophe as a one-quote string that ends with its line.
    s = f.by_name()["in_string"].values
    assert s[t.index("'"):t.rindex("\n")].all() and not s[:t.index("'")].any()


def test_scanner_alone():
    strings, comments = scan_code("a = '\\'' # c\nb = \"\"\"x\"\"\"")
    assert strings == [(4, 8, "'", True), (17, 24, '"""', True)]
    assert scan_code("x = 'ab\ny")[0] == [(4, 7, "'", False)]
    assert comments == [(9, 12)]


def test_prose_features():
    t = 'He said "no (really)" and left.\nOk'
    f = prose_features(t).by_name()
    q = t.index('"')
    assert f["in_quotes"].values[q:t.rindex('"')].all() and not f["in_quotes"].values[t.rindex('"'):].any()
    assert f["in_parens"].values[t.index("("):t.index(")")].all() and not f["in_parens"].values[t.index(")"):].any()
    assert list(f["position_in_word"].values[:4]) == [1, 2, 0, 1]
    assert f["position_in_line"].values[t.index("\n")] == 0


def test_code_or_prose():
    code = "def f(x):\n    return g(x[0], {'a': 1})\n" * 5
    prose = "It was the best of times, it was the worst of times, it was the age of wisdom.\n" * 5
    assert looks_like_code(code) and not looks_like_code(prose)
    assert text_features(code).kind == "code" and text_features(prose).kind == "prose"
    with pytest.raises(ValueError, match="kind"):
        text_features(code, "poetry")
    with pytest.raises(ValueError, match="non-empty"):
        text_features("")


# ------------------------------------------------------------------ scoring


def test_threshold_accuracy_is_the_best_single_threshold():
    rng = np.random.default_rng(0)
    acts = rng.standard_normal((300, 6))
    acts[:, 2] = np.round(acts[:, 2])  # ties
    acts[:, 3] = 0.0
    labels = (rng.random(300) < 0.3).astype(float)
    acts[:, 4] = labels + 0.4 * rng.standard_normal(300)

    def brute(col):
        best = max(labels.mean(), 1 - labels.mean())
        for t in np.unique(col):
            pred = col >= t
            best = max(best, (pred == (labels > 0)).mean(), (pred != (labels > 0)).mean())
        return best

    np.testing.assert_allclose(threshold_accuracy(acts, labels), [brute(acts[:, j]) for j in range(6)])
    np.testing.assert_allclose(correlations(acts, labels)[[0, 4]],
                               [np.corrcoef(acts[:, j], labels)[0, 1] for j in (0, 4)])
    assert correlations(acts, labels)[3] == 0
    with pytest.raises(ValueError, match="constant"):
        correlations(acts, np.ones(300))


def test_ranking_puts_the_copying_unit_first():
    text = "def f(a, b):\n    return (a + [b, (1)])  # x\n" * 20
    feats = code_features(text).features
    depth = code_features(text).by_name()["bracket_depth"].values
    rng = np.random.default_rng(1)
    acts = rng.standard_normal((len(text), 2, 8))
    acts[:, 1, 5] = -0.3 * depth + 0.01 * rng.standard_normal(len(text))
    scores = score_units(acts, feats)
    best = max((s for s in scores if s.feature == "bracket_depth"), key=lambda s: abs(s.correlation))
    assert (best.layer, best.unit) == (1, 5) and best.correlation < -0.99
    rows = rank(scores, 4)
    assert len(rows) == 4 and rows[0].feature == "bracket_depth" and (rows[0].layer, rows[0].unit) == (1, 5)
    assert [abs(r.correlation) for r in rows] == sorted((abs(r.correlation) for r in rows), reverse=True)
    only = score_units(acts, feats, layers=[0])
    assert {s.layer for s in only} == {0}
    with pytest.raises(ValueError, match="layer 2"):
        score_units(acts, feats, layers=[2])


def line_start_model(text):
    """A one-layer tanh char-RNN built so that unit 2 is +1 exactly at_line_start (after a newline, and
    after spaces that follow one) and -1 elsewhere: pre = 40 [newline] + 10 [space] + 10 h_prev - 15."""
    m = CharLM(Vocab.from_text(text), "rnn", layers=1, hidden=4, embed=0, seed=3)
    p = m.params
    nl, sp = m.vocab.id("\n"), m.vocab.id(" ")
    for name in ("rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0"):
        p[name][2] = 0
    p["rnn.weight_hh_l0"][:, 2] = 0
    p["rnn.weight_ih_l0"][2, nl] = 40
    p["rnn.weight_ih_l0"][2, sp] = 10
    p["rnn.weight_hh_l0"][2, 2] = 10
    p["rnn.bias_ih_l0"][2] = -15
    return m


CODE = "".join(f"def f{i}(x):\n    if x:\n        return 'a{i}'  # c\n    return (x, [x])\n" for i in range(40))


def test_a_unit_built_to_copy_a_feature_is_found():
    m = line_start_model(CODE)
    _, acts = m.activations(CODE)
    truth = code_features(CODE).by_name()["at_line_start"].values
    np.testing.assert_allclose(acts[:, 0, 2], 2 * truth - 1, atol=1e-3)
    rows = rank(score_units(acts, code_features(CODE).features), 12)
    top = rows[0]
    assert (top.layer, top.unit, top.feature) == (0, 2, "at_line_start")
    assert top.correlation > 0.999 and top.accuracy == 1.0


# ------------------------------------------------------------------ activations


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_activations_are_the_layers_forward(cell, monkeypatch):
    text = "ab(c)\n  'd' e#\n" * 3
    m = CharLM(Vocab.from_text(text[:-4]), cell, layers=2, hidden=5, embed=3, dtype=np.float64, seed=2)
    monkeypatch.setattr(charlm_model, "ACTIVATION_CHUNK", 7)  # the states carried over several chunks
    chars, acts = m.activations(text)
    assert chars == text and acts.shape == (len(text), 2, 5) and acts.dtype == np.float64
    h, c = m.states(text)
    assert (c is not None) == (cell == "lstm") == m.has_cell_state
    np.testing.assert_array_equal(acts, c if cell == "lstm" else h)
    m.rnn.eval()
    ids = m.vocab.encode(text).astype(np.int64)
    y, hn = m.rnn.forward(m._input_table(), None, ids=ids[:, None])
    np.testing.assert_allclose(h[:, 1], y[:, 0], rtol=1e-12, atol=1e-13)
    for i in (0, 6, 7, 20, len(text) - 1):  # every layer's states after character i
        _, state = m.rnn.forward(m._input_table(), None, ids=ids[:i + 1, None])
        hi, ci = state if cell == "lstm" else (state, None)
        np.testing.assert_allclose(h[i], hi[:, 0], rtol=1e-12, atol=1e-13)
        if ci is not None:
            np.testing.assert_allclose(c[i], ci[:, 0], rtol=1e-12, atol=1e-13)
    np.testing.assert_array_equal(m.activations(text, "h")[1], h)
    if cell == "lstm":
        np.testing.assert_array_equal(m.activations(text, "tanh_c")[1], np.tanh(c))
        assert m.recorded_state() == "c"
    else:
        assert m.recorded_state() == "h"


def test_activations_bad_input():
    m = CharLM(Vocab.from_text("abc"), "gru", layers=1, hidden=3, embed=2)
    with pytest.raises(ValueError, match="non-empty"):
        m.activations("")
    for state in ("c", "tanh_c"):
        with pytest.raises(ValueError, match="cell state"):
            m.activations("ab", state)
    with pytest.raises(ValueError, match="state must be"):
        m.activations("ab", "x")


@pytest.mark.parametrize("mode", ["lstm", "gru", "rnn_tanh"])
def test_workspace_states_are_the_forward_states(mode):
    rng = np.random.default_rng(4)
    T, B, I, H = 5, 2, 3, 4
    G = kernels.num_gates(mode)
    x, h0 = rng.standard_normal((T, B, I)), rng.standard_normal((B, H))
    w_ih, w_hh = 0.5 * rng.standard_normal((G * H, I)), 0.5 * rng.standard_normal((G * H, H))
    for reverse in (False, True):
        r = kernels.forward(mode, x, h0, w_ih, w_hh, reverse=reverse)
        h, c = r.workspace.states()
        assert h.shape == (T + 1, B, H) and (c is None) == (mode != "lstm")
        first, rest = (h[T], h[:T]) if reverse else (h[0], h[1:])
        np.testing.assert_array_equal(first, h0)
        np.testing.assert_array_equal(rest, r.y)
        if c is not None:
            np.testing.assert_array_equal(c[0] if reverse else c[T], r.c_n)
        kernels.backward(r.workspace, np.ones_like(r.y))
        with pytest.raises(RuntimeError, match="backward"):
            r.workspace.states()


# ------------------------------------------------------------------ the page


class _Checker(html.parser.HTMLParser):
    """Tags balanced (void elements aside), and the text of each <pre> collected."""

    VOID = {"meta", "br", "img", "link", "input", "hr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.pres, self.tags = [], [], set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        for name, value in attrs:
            assert name not in ("src", "href") or (value or "").startswith("#"), (tag, name, value)
        if tag not in self.VOID:
            self.stack.append(tag)
        if tag == "pre":
            self.pres.append([])

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, (self.stack[-3:], tag)
        self.stack.pop()

    def handle_data(self, data):
        if "pre" in self.stack:
            self.pres[-1].append(data)


def test_page_is_well_formed_and_self_contained():
    text = "if a < b & c:\n\treturn '<x>'  # \"q\"\n" * 30
    rng = np.random.default_rng(0)
    acts = rng.standard_normal((len(text), 2, 6)) * 2
    feats = code_features(text).features
    rows = rank(score_units(acts, feats), 3)
    page = render(text, acts, rows, feats, "t<i>tle", {"model": "m & n"}, squash=True)
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert checker.stack == []
    assert page.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in page
    for banned in ("http://", "https://", "<script", "<link", "@import", "url("):
        assert banned not in page
    assert {"style", "table", "pre", "section"} <= checker.tags
    assert len(checker.pres) == 3
    for pre in checker.pres:  # the whole text, with a faint ↵ marking each newline
        assert "".join(pre).replace("\u21b5", "") == text
    assert "t&lt;i&gt;tle" in page and "m &amp; n" in page
    with pytest.raises(ValueError, match="activations"):
        render(text[:-1], acts, rows, feats)


# ------------------------------------------------------------------ the command


def bad(capsys, argv):
    try:
        code = cli(argv)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    assert code != 0
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.fixture
def model_dir(tmp_path):
    d = tmp_path / "model"
    line_start_model(CODE).save(str(d))
    return str(d)


@pytest.fixture
def code_file(tmp_path):
    path = tmp_path / "code.py"
    path.write_text(CODE, encoding="utf-8")
    return str(path)


def test_cells_command(model_dir, code_file, tmp_path, capsys):
    page = tmp_path / "cells.html"
    assert cli(["cells", model_dir, "--text", code_file, "--json", "--top", "5", "--html", str(page),
                "--no-progress"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 5 and {"layer", "unit", "feature", "correlation"} <= set(rows[0])
    assert (rows[0]["layer"], rows[0]["unit"], rows[0]["feature"]) == (0, 2, "at_line_start")
    assert rows[0]["correlation"] > 0.999 and rows[0]["accuracy"] == 1.0
    assert [abs(r["correlation"]) for r in rows] == sorted((abs(r["correlation"]) for r in rows), reverse=True)
    text = page.read_text(encoding="utf-8")
    assert "layer 0 \u00b7 unit 2" in text and html.escape("at_line_start") in text
    assert cli(["cells", model_dir, "--text", code_file, "--layer", "0", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "state h" in out and "code features from tokenize" in out
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["layer", "unit"])
    assert lines[header + 1].split()[:3] == ["0", "2", "at_line_start"]


def test_cells_bad_input(model_dir, code_file, tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert "not a directory" in bad(capsys, ["cells", str(tmp_path / "nope"), "--text", code_file])
    assert "no checkpoint" in bad(capsys, ["cells", str(tmp_path), "--text", code_file])
    assert "empty" in bad(capsys, ["cells", model_dir, "--text", str(empty)])
    assert "not found" in bad(capsys, ["cells", model_dir, "--text", str(tmp_path / "missing.py")])
    assert "--layer 3" in bad(capsys, ["cells", model_dir, "--text", code_file, "--layer", "3"])
    assert "--top" in bad(capsys, ["cells", model_dir, "--text", code_file, "--top", "0"])
    assert "cell state" in bad(capsys, ["cells", model_dir, "--text", code_file, "--state", "c"])
    assert "--text" in bad(capsys, ["cells", model_dir])
