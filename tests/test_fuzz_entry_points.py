"""Property-based tests of the entry points tests/test_fuzz.py does not reach: pooling, the fused output
loss, the char-LM sampler, the classifier and the captioner. Properties: valid input agrees with the
reference (pooling, the loss) or gives well-formed output (sampling, classify, captions); bad input
raises only the documented exceptions (ValueError, TypeError); nothing crashes or hangs. The example
counts come from the hypothesis profile (tests/conftest.py: ``ci`` or ``long``)."""
import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from rnnkit import losses, pooling
from rnnkit.captions import Captioner
from rnnkit.charlm import CharLM, Vocab
from rnnkit.classify import Classifier
from rnnkit.classify.data import Labels
from rnnkit.nn import Linear
from rnnkit.reference import pooling as ref_pooling
from rnnkit.seq2seq import TokenVocab

DOCUMENTED = (ValueError, TypeError)
ODD = st.sampled_from([None, 0, -1, 2.5, float("nan"), "x", [1, 2], np.zeros(0), np.zeros((2, 2, 2), np.int32),
                       np.full((3, 2, 2), np.inf, np.float32), np.zeros((1, 1, 1, 1), np.float32), True])


def _layout(a, layout):
    if layout == "fortran":
        return np.asfortranarray(a)
    if layout == "strided":
        b = np.zeros((a.shape[0] * 2,) + a.shape[1:], a.dtype)
        b[::2] = a
        return b[::2]
    if layout == "readonly":
        a = a.copy()
        a.setflags(write=False)
        return a
    if layout == "misaligned":  # data one byte past an aligned address
        b = np.ndarray(a.shape, a.dtype, np.zeros(a.nbytes + 1, np.uint8).data, offset=1)
        b[...] = a
        return b
    return a


LAYOUTS = st.sampled_from(["c", "fortran", "strided", "readonly", "misaligned"])


@st.composite
def pool_cases(draw):
    T, B, F = draw(st.integers(1, 5)), draw(st.integers(1, 4)), draw(st.integers(1, 6))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, B, F)).astype(dtype)
    if draw(st.booleans()):  # ties make max pick the first step of the largest value
        x = np.round(x)
    lengths = rng.integers(1, T + 1, B) if draw(st.booleans()) else None
    split = draw(st.one_of(st.none(), st.integers(0, F)))
    return draw(st.sampled_from(pooling.KINDS)), x, lengths, split, draw(LAYOUTS), rng.standard_normal((B, F))


@given(pool_cases())
def test_pooling_agrees_with_the_reference_in_any_layout(case):
    kind, x, lengths, split, layout, dout = case
    got = pooling.forward(kind, _layout(x, layout), lengths, split)
    want = ref_pooling.forward(kind, x, lengths, split)
    tol = 1e-6 if x.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got.out, want.out, rtol=tol, atol=tol)
    dout = dout.astype(x.dtype)
    np.testing.assert_allclose(pooling.backward(got.cache, _layout(dout, layout)), ref_pooling.backward(want.cache, dout),
                               rtol=tol, atol=tol)


@given(pool_cases(), st.sampled_from(["kind", "x", "lengths", "split", "dout"]), ODD)
def test_pooling_with_a_bad_argument_raises_only_documented_errors(case, name, value):
    kind, x, lengths, split, _, dout = case
    args = dict(kind=kind, x=x, lengths=lengths, split=split)
    if name != "dout":
        args[name] = value
    try:
        r = pooling.forward(args["kind"], args["x"], args["lengths"], args["split"])
        pooling.backward(r.cache, value if name == "dout" else dout)
    except DOCUMENTED:
        pass


@given(st.integers(1, 6), st.integers(1, 5), st.integers(2, 7), st.sampled_from([np.float32, np.float64]),
       st.integers(0, 2**16), st.booleans(), st.sampled_from(["none", "targets", "weights", "x"]))
def test_the_fused_output_loss_agrees_with_softmax_cross_entropy(N, I, V, dtype, seed, weighted, damage):
    rng = np.random.default_rng(seed)
    head = Linear(I, V, dtype=dtype, rng=np.random.default_rng(seed + 1))
    x = rng.standard_normal((N, I)).astype(dtype)
    targets = rng.integers(0, V, N)
    weights = rng.uniform(0.1, 1.0, N) if weighted else None
    if damage == "targets":
        targets[0] = rng.choice([-1, V, 2**40])
    elif damage == "weights":
        weights = np.full(N, -1.0)
    elif damage == "x":
        x = x[:, :-1] if I > 1 else x.reshape(-1)
    try:
        loss, dx = losses.linear_softmax_cross_entropy(head, x, targets, weights)
    except DOCUMENTED:
        assert damage != "none"
        return
    assert damage == "none"
    logits = head.forward(x)
    want, dlogits = losses.softmax_cross_entropy(logits, targets, weights)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(loss, want, rtol=tol, atol=tol)
    np.testing.assert_allclose(dx, dlogits @ head.params["weight"], rtol=tol * 10, atol=tol * 10)


_TEXT = "the quick brown fox jumps over the lazy dog\n" * 3
_MODELS = {}


def _charlm(cell):
    if cell not in _MODELS:
        _MODELS[cell] = CharLM(Vocab.from_text(_TEXT), cell, 2, 16, 8, seed=0)
    return _MODELS[cell]


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["lstm", "gru", "rnn"]),
       st.one_of(st.integers(-2, 40), st.just(2.5), st.just(None), st.just("3")),
       st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.just(0.0), st.integers(-1, 3)),
       st.one_of(st.none(), st.integers(-1, 30), st.just(1.5)),
       st.one_of(st.text(max_size=12), st.just("\x00zé🙂")),
       st.one_of(st.none(), st.integers(0, 2**64 - 1), st.integers(-5, -1)),
       st.sampled_from(["float32", "float16", "int8", "float8", 3]))
def test_the_sampler_gives_text_or_a_documented_error(cell, length, temperature, top_k, prime, seed, weights):
    model = _charlm(cell)
    try:
        out = model.sample(length, temperature, top_k, prime, seed, weights)
    except DOCUMENTED:
        return
    assert isinstance(out, str) and out.startswith(prime)
    assert len(out) == len(prime) + length
    if seed is not None:
        assert model.sample(length, temperature, top_k, prime, seed, weights) == out


_CLASSIFIERS = {}


def _classifier(per_step, pool):
    key = (per_step, pool)
    if key not in _CLASSIFIERS:
        vocab = TokenVocab.build([list("abcdef"), ["hello", "world"]])
        _CLASSIFIERS[key] = Classifier(vocab, Labels(["neg", "pos", "mid"]), "gru", 1, 16, 8, bidirectional=True,
                                       pool=pool, per_step=per_step, seed=0)
    return _CLASSIFIERS[key]


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.booleans(), st.sampled_from(["last", "mean", "max", "attention"]),
       st.lists(st.text(max_size=20), min_size=1, max_size=4))
def test_classify_gives_probabilities_or_a_documented_error(per_step, pool, texts):
    model = _classifier(per_step, "last" if per_step else pool)
    try:
        out = model.classify(texts)
    except DOCUMENTED:
        return
    assert len(out) == len(texts)
    for r in out:
        if per_step:
            assert all(0 <= p <= 1 and tag in model.labels.names for _, tag, p in r)
        else:
            label, probs = r
            assert label in probs and abs(sum(probs.values()) - 1) < 1e-4


_CAPTIONER = {}


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 3), st.sampled_from([(4, 5), (4, 6), (3, 5), (4,)]), st.sampled_from([np.float32, np.float64]),
       st.sampled_from(["normal", "nan", "inf", "huge"]), st.integers(1, 3), st.integers(-1, 8))
def test_captions_give_hypotheses_or_a_documented_error(n, shape, dtype, values, beam, max_len):
    from rnnkit.captions.train import caption_all

    if not _CAPTIONER:
        _CAPTIONER[0] = Captioner(5, 4, TokenVocab.build([["a", "red", "circle"]]), "lstm", 1, 16, 8, seed=0)
    model = _CAPTIONER[0]
    regions = np.random.default_rng(n).standard_normal((n, *shape)).astype(dtype)
    if values != "normal" and regions.size:
        regions.flat[0] = {"nan": np.nan, "inf": np.inf, "huge": 1e30}[values]
    try:
        hyps = caption_all(model, regions, beam=beam, max_len=max_len)
    except DOCUMENTED as e:
        if shape == (4, 5) and n and values in ("nan", "inf") and dtype == np.float32:
            assert "must be finite" in str(e)
        return
    assert not (n and values in ("nan", "inf")), "non-finite regions must be refused"
    assert len(hyps) == n
    for h in hyps:
        assert all(0 <= t < len(model.vocab) for t in h.tokens)
