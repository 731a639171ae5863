"""rnnkit.seq2seq: the tasks and the pairs loader, the whole model's gradient by finite differences,
decoding (greedy, beam search, GNMT normalisation) and the metrics."""
import datetime
import functools
import tempfile

import numpy as np
import pytest

from rnnkit.seq2seq import Seq2Seq, TokenVocab, VectorToSequence
from rnnkit.seq2seq.data import Encoded, load_splits, make_batch, task_spec
from rnnkit.seq2seq.decode import beam_search, greedy, greedy_tokens, length_penalty
from rnnkit.seq2seq.metrics import corpus_bleu, exact_match, token_accuracy
from rnnkit.seq2seq.pairs import PairsError, read_pairs, split_pairs, tokenize
from rnnkit.seq2seq.tasks import DATE_FORMATS, format_date, make_task
from rnnkit.seq2seq.train import TrainConfig, train
from rnnkit.seq2seq.vocab import BOS, EOS


pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------------------------------------- tasks


@pytest.mark.parametrize("name,opts", [("addition", {"digits": 3}), ("dates", {}),
                                       ("reverse", {"min_len": 3, "max_len": 6}), ("sort", {"alphabet": "abc"})])
def test_tasks_are_deterministic_with_disjoint_splits(name, opts):
    a = make_task(name, 7, 300, 50, 60, **opts)
    assert a == make_task(name, 7, 300, 50, 60, **opts)
    assert a != make_task(name, 8, 300, 50, 60, **opts)
    assert (len(a.train), len(a.val), len(a.test)) == (300, 50, 60)
    sources = [{s for s, _ in part} for part in a]
    assert sum(map(len, sources)) == 410  # distinct within and across splits
    assert not (sources[0] & sources[1] or sources[0] & sources[2] or sources[1] & sources[2])


def test_task_contents():
    for src, tgt in make_task("addition", 0, 200, 10, 10, digits=2).train:
        x, y = src.split("+")
        assert int(tgt) == int(x) + int(y) and max(len(x), len(y)) <= 2
    for src, tgt in make_task("reverse", 0, 100, 10, 10, min_len=4, max_len=5, alphabet="xyz").train:
        assert tgt == src[::-1] and 4 <= len(src) <= 5 and set(src) <= set("xyz")
    for src, tgt in make_task("sort", 0, 100, 10, 10).train:
        assert tgt == "".join(sorted(src)) and 20 <= len(src) <= 30
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        make_task("nope")
    with pytest.raises(ValueError, match="too few distinct examples"):
        make_task("addition", 0, 200, 10, 10, digits=1)
    with pytest.raises(ValueError, match="has no option 'digits'"):
        task_spec("dates", digits=3)


def test_dates_in_every_format_parse_back():
    dateutil_parser = pytest.importorskip("dateutil.parser")
    rng = np.random.default_rng(0)
    days = [datetime.date(1998, 3, 3), datetime.date(2049, 12, 31), datetime.date(1950, 1, 1),
            datetime.date(2000, 2, 29), datetime.date(2011, 11, 12), datetime.date(1972, 8, 22)]
    days += [datetime.date.fromordinal(int(o)) for o in rng.integers(712223, 748383, 30)]
    for fmt in DATE_FORMATS:
        for d in days:
            text = format_date(d, fmt)
            yearfirst = fmt.startswith("{yyyy}")
            parsed = dateutil_parser.parse(text.replace("the ", "").replace(" of ", " "), dayfirst=not yearfirst,
                                           yearfirst=yearfirst, default=datetime.datetime(1900, 1, 1)).date()
            assert (parsed.year % 100, parsed.month, parsed.day) == (d.year % 100, d.month, d.day), (fmt, text)
            if "{yy}" not in fmt:
                assert parsed.year == d.year, (fmt, text)
            for weekday in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"):
                if weekday[:3] in text.lower():
                    assert d.strftime("%A").lower().startswith(weekday[:3]), (fmt, text)
    assert format_date(datetime.date(1998, 3, 3), DATE_FORMATS[0]) == "tuesday 3 march 1998"
    assert format_date(datetime.date(1998, 3, 3), DATE_FORMATS[1]) == "3/3/98"
    assert format_date(datetime.date(1998, 3, 3), DATE_FORMATS[2]) == "March 3rd, 1998"
    assert format_date(datetime.date(1998, 3, 11), DATE_FORMATS[2]) == "March 11th, 1998"
    splits = make_task("dates", 0, 2000, 10, 10)
    for src, tgt in splits.train[:200]:
        datetime.date.fromisoformat(tgt)
    assert len({len(s) for s, _ in splits.train}) > 10  # many formats and lengths


# ---------------------------------------------------------------------------------------------- pairs


def test_pairs_file_loading_and_errors(tmp_path):
    f = tmp_path / "p.tsv"
    f.write_text("Go.\tVa !\tCC-BY 2.0 attribution\n\nHi.\tSalut !\n", encoding="utf-8")
    assert read_pairs(str(f)) == [("Go.", "Va !"), ("Hi.", "Salut !")]
    f.write_text("a\tb\nc\td\nno tab here\n")
    with pytest.raises(PairsError, match=r"p.tsv:3: expected source<TAB>target"):
        read_pairs(str(f))
    f.write_text("a\tb\nc\t \n")
    with pytest.raises(PairsError, match=r":2: empty target"):
        read_pairs(str(f))
    f.write_text("\tb\n")
    with pytest.raises(PairsError, match=r":1: empty source"):
        read_pairs(str(f))
    for content in ("", "\n  \n"):
        f.write_text(content)
        with pytest.raises(PairsError, match="holds no pairs"):
            read_pairs(str(f))
    with pytest.raises(PairsError, match="not found"):
        read_pairs(str(tmp_path / "missing.tsv"))
    f.write_bytes(b"a\t\xff\n")
    with pytest.raises(PairsError, match="not UTF-8"):
        read_pairs(str(f))


def test_pairs_split_keeps_each_source_in_one_split():
    pairs = [(f"s{i % 40}", f"t{i}") for i in range(200)]  # 40 sources, 5 translations each
    a = split_pairs(pairs, seed=3)
    assert a == split_pairs(pairs, seed=3) and sum(map(len, a)) == 200
    owners = [{s for s, _ in part} for part in a]
    assert not (owners[0] & owners[1] or owners[0] & owners[2] or owners[1] & owners[2])
    assert len(owners[1]) == len(owners[2]) == 2  # 5% of 40 each
    assert tokenize("Don't go, Tom!", "word") == ["Don", "'", "t", "go", ",", "Tom", "!"]
    assert tokenize("ab c", "char") == ["a", "b", " ", "c"]


# ---------------------------------------------------------------------------------------------- model

SRC, TGT = TokenVocab("abcde"), TokenVocab("xyz")


def tiny_batch(rng, dtype=np.float64):
    src = [np.append(rng.integers(4, len(SRC), n), EOS).astype(np.int32) for n in (3, 1, 4)]
    tgt = [rng.integers(4, len(TGT), n).astype(np.int32) for n in (2, 3, 0)]
    return make_batch(src, tgt, dtype)


def check_gradients(model, loss, rng, per_param=4):
    model.zero_grad()
    loss()
    analytic = {k: g.copy() for k, g in model.grads.items()}
    eps = 1e-6
    for name, p in model.params.items():
        assert np.any(analytic[name] != 0) or name == "tgt_embed.weight", f"{name} got no gradient"
        for flat in rng.choice(p.size, size=min(per_param, p.size), replace=False):
            idx = np.unravel_index(flat, p.shape)
            old = p[idx]
            p[idx] = old + eps
            up = loss()
            p[idx] = old - eps
            down = loss()
            p[idx] = old
            assert analytic[name][idx] == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-9), (name, idx)


@pytest.mark.parametrize("cell,attention,bidirectional", [
    ("lstm", "none", False), ("lstm", "none", True), ("lstm", "dot", False), ("lstm", "dot", True),
    ("lstm", "general", True), ("lstm", "additive", False), ("lstm", "additive", True),
    ("gru", "general", False), ("gru", "additive", True), ("rnn", "dot", True)])
def test_whole_seq2seq_loss_gradient_by_finite_differences(cell, attention, bidirectional):
    """Every parameter, float64, reference attention; 2 layers; padded sources and targets (one empty)."""
    rng = np.random.default_rng(0)
    m = Seq2Seq(SRC, TGT, cell, layers=2, hidden=4, embed=3, bidirectional=bidirectional, attention=attention,
                attn_size=5 if attention == "additive" else None, dtype=np.float64, seed=1,
                attention_backend="reference")
    batch = tiny_batch(rng)
    check_gradients(m, lambda: m.loss_and_grad(batch), rng)


@pytest.mark.parametrize("cell,attention", [("lstm", "general"), ("gru", "none")])
def test_seq2seq_dropout_gradient_by_finite_differences(cell, attention):
    """Dropout between the 2 layers and on the output layer's input, with the masks held fixed (the
    generators restored before every pass); the masks do change the loss, and evaluation has none."""
    rng = np.random.default_rng(3)
    m = Seq2Seq(SRC, TGT, cell, layers=2, hidden=4, embed=3, attention=attention, dtype=np.float64, seed=1,
                attention_backend="reference", dropout=0.4)
    batch = tiny_batch(rng)
    states = m.rng_states()

    def loss():
        m.set_rng_states(states)
        return m.loss_and_grad(batch)

    check_gradients(m, loss, rng)
    plain = Seq2Seq(SRC, TGT, cell, layers=2, hidden=4, embed=3, attention=attention, dtype=np.float64, seed=1,
                    attention_backend="reference")
    assert loss() != pytest.approx(plain.loss_and_grad(batch), rel=1e-6)
    assert m.loss(batch) == pytest.approx(plain.loss(batch), rel=1e-12)  # same weights, no dropout in eval
    with pytest.raises(ValueError, match="dropout"):
        Seq2Seq(SRC, TGT, cell, dropout=1.0)


def test_vector_to_sequence_gradient_and_decoding():
    rng = np.random.default_rng(1)
    for cell in ("lstm", "gru"):
        m = VectorToSequence(5, TGT, cell, layers=2, hidden=4, embed=3, dtype=np.float64, seed=2)
        feats = rng.standard_normal((3, 5))
        batch = tiny_batch(rng)
        check_gradients(m, lambda: m.loss_and_grad(feats, batch), rng)
        g = greedy(m.decoder, m.start(feats), 6)
        b = beam_search(m.decoder, m.start(feats), 1, 6)
        assert [h.tokens for h in g] == [h[0].tokens for h in b]
        assert len(g) == 3


def test_native_attention_gives_the_reference_loss():
    rng = np.random.default_rng(2)
    batch = tiny_batch(rng)
    for kind in ("dot", "general", "additive"):
        a, b = (Seq2Seq(SRC, TGT, "gru", 1, 6, 3, True, kind, dtype=np.float64, seed=4, attention_backend=be)
                for be in ("reference", "native"))
        assert a.loss_and_grad(batch) == pytest.approx(b.loss_and_grad(batch), rel=1e-12)
        for k in a.grads:
            np.testing.assert_allclose(a.grads[k], b.grads[k], rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------------------------------------- decoding

@functools.lru_cache(maxsize=None)
def trained(attention="general", cell="gru"):
    """A model trained briefly (200 steps, well short of convergence) on sorting short strings, and 32
    validation sources: its outputs are varied and often uncertain, where beam search and greedy differ."""
    cfg = TrainConfig(data=task_spec("sort", 0, {"train": 2000, "val": 50, "test": 50}, min_len=3, max_len=8,
                                     alphabet="abcdef"),
                      cell=cell, hidden=24, embed=8, attention=attention, bidirectional=True, steps=200,
                      eval_every=1000, batch=32)
    with tempfile.TemporaryDirectory() as out:
        m = train(cfg, out, progress=False, log=lambda s: None)
    enc = Encoded(load_splits(cfg.data).val, "char", m.src_vocab, m.tgt_vocab)
    b = make_batch(enc.src[:32], enc.tgt[:32])
    return m, b.src, b.src_len


def teacher_forced_logp(m, S, lens, hyp, b):
    """log p(hyp) of example b by the training forward (not the decoding steps)."""
    toks = list(hyp.tokens) + ([EOS] if hyp.ended else [])
    tin = np.array([[BOS] + toks[:-1]], np.int32).T
    h0, c0, keys, mask = m.encode(S[b:b + 1], lens[b:b + 1])
    logits = m.decoder.forward(tin, h0, c0, keys, mask, training=False).astype(np.float64)
    z = logits - logits.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    return float(logp[np.arange(len(toks)), toks].sum())


@pytest.mark.parametrize("attention,cell", [("none", "lstm"), ("general", "gru"), ("additive", "gru"),
                                            ("dot", "rnn")])
def test_beam_of_one_is_greedy(attention, cell):
    m, S, lens = trained(attention, cell)
    want = attention != "none"
    g = greedy(m.decoder, m.start(S, lens), 12, return_attention=want)
    b = beam_search(m.decoder, m.start(S, lens), 1, 12, return_attention=want)
    assert [h.tokens for h in g] == [h[0].tokens for h in b]
    assert [h.score for h in g] == [h[0].score for h in b]
    assert any(len(h.tokens) > 0 for h in g)
    if want:
        for h, hb in zip(g, b):
            assert h.attention.shape == (h.length, S.shape[1])
            np.testing.assert_allclose(h.attention.sum(1), 1, rtol=1e-5)
            np.testing.assert_array_equal(h.attention, hb[0].attention)
    # the decoding steps (kernels.step) compute the same probabilities as the training forward
    for i, h in enumerate(g):
        assert h.logp == pytest.approx(teacher_forced_logp(m, S, lens, h, i), abs=1e-4)


@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.5])
def test_beam_returns_n_best_the_best_never_below_greedy(alpha):
    for attention, cell in (("general", "gru"), ("none", "lstm")):
        m, S, lens = trained(attention, cell)
        g = greedy(m.decoder, m.start(S, lens), 12, alpha)
        better = 0
        for K in (2, 3, 5):
            hyps = beam_search(m.decoder, m.start(S, lens), K, 12, alpha, n_best=K)
            for b, hs in enumerate(hyps):
                assert len(hs) == K  # n_best hypotheses, not only those above greedy
                assert [h.score for h in hs] == sorted((h.score for h in hs), reverse=True)
                assert hs[0].score >= g[b].score
                better += hs[0].score > g[b].score + 1e-6
                for h in hs:  # each score is its log-probability under the model, normalised
                    assert h.score == pytest.approx(h.logp / length_penalty(h.length, alpha))
                    assert h.logp == pytest.approx(teacher_forced_logp(m, S, lens, h, b), abs=1e-4)
                    assert h.length == len(h.tokens) + h.ended
                assert len({(tuple(h.tokens), h.length) for h in hs}) == len(hs)
        assert better >= 3  # the beam does beat greedy on this model (the checks above are not vacuous)
        # n_best is a prefix of a longer list: the same best hypotheses whatever the count asked for
        five = beam_search(m.decoder, m.start(S, lens), 5, 12, alpha, n_best=5)
        two = beam_search(m.decoder, m.start(S, lens), 5, 12, alpha, n_best=2)
        assert [[h.tokens for h in hs] for hs in two] == [[h.tokens for h in hs[:2]] for hs in five]


def test_gnmt_length_normalisation():
    assert length_penalty(1, 0.6) == pytest.approx(1.0)
    assert length_penalty(7, 0.6) == pytest.approx(2.0 ** 0.6)
    assert length_penalty(np.array([1, 13]), 1.0).tolist() == pytest.approx([1.0, 3.0])
    assert length_penalty(30, 0.0) == 1.0
    # alpha trades likelihood for length: with a large alpha the best outputs get longer
    m, S, lens = trained("general", "gru")
    plain = beam_search(m.decoder, m.start(S, lens), 5, 20, 0.0)
    longer = beam_search(m.decoder, m.start(S, lens), 5, 20, 3.0)
    assert sum(h[0].length for h in longer) > sum(h[0].length for h in plain)


def test_decoding_stops_at_max_len_and_greedy_tokens():
    m, S, lens = trained("dot", "rnn")
    S, lens = S[:5], lens[:5]
    for h in greedy(m.decoder, m.start(S, lens), 3):
        assert h.length <= 3 and len(h.tokens) <= 3
    own = greedy_tokens(m.decoder, m.start(S, lens), 4)
    assert own.shape == (4, 5)
    g = greedy(m.decoder, m.start(S, lens), 4)
    for b, h in enumerate(g):
        assert own[:len(h.tokens), b].tolist() == h.tokens
    with pytest.raises(ValueError, match="beam size"):
        beam_search(m.decoder, m.start(S, lens), 0, 4)
    with pytest.raises(ValueError, match="n_best"):
        beam_search(m.decoder, m.start(S, lens), 2, 4, n_best=3)


# ---------------------------------------------------------------------------------------------- metrics

def test_metrics():
    refs = [["a", "b", "c"], ["d"], ["e", "f"]]
    hyps = [["a", "b", "c"], ["x"], ["e"]]
    assert exact_match(hyps, refs) == pytest.approx(1 / 3)
    assert token_accuracy(hyps, refs) == pytest.approx(4 / 6)
    sent = "the cat sat on the mat today".split()
    assert corpus_bleu([sent], [sent]) == pytest.approx(100.0)
    assert corpus_bleu([["x", "y"]], [sent]) == 0.0
    # hand computed: p1 = 5/6, p2 = 3/5, p3 = 1/4, p4 = 0/3 -> 0 without smoothing; a 4-gram match:
    hyp = "the cat sat on the mat".split()
    ref = "the cat sat on a mat today".split()
    p = [5 / 6, 3 / 5, 2 / 4, 1 / 3]  # 'the' clipped to 1; bigrams the-cat cat-sat sat-on
    expected = 100 * np.exp(np.mean(np.log(p)) + (1 - 7 / 6))
    assert corpus_bleu([hyp], [ref]) == pytest.approx(expected)


def test_encoded_split_appends_end_and_keeps_reference_tokens():
    v = TokenVocab("ab")
    enc = Encoded([("ab", "ba"), ("a", "zz")], "char", v, v)
    assert enc.src[0].tolist() == [v.encode("a")[0], v.encode("b")[0], EOS]
    assert enc.tgt[1].tolist() == [3, 3] and enc.tgt_tokens[1] == ["z", "z"]  # unknown -> <unk>, kept as text
    b = enc.batch([0, 1])
    assert b.tgt_in[:, 0].tolist()[0] == BOS and b.tgt_out[2, 0] == EOS and b.weights.sum() == 6
