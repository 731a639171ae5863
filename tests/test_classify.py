"""rnnkit.classify's pieces: the built-in tasks, the stratified split, labels and batches, class weights,
metrics, and the Classifier's loss and gradients (finite differences in float64, and the same model in
PyTorch with packed sequences), with padding that never leaks into a result."""
import numpy as np
import pytest
import torch

from rnnkit.classify.data import Encoded, Labels, PairsError, build_vocab, read_examples, stratified_split
from rnnkit.classify.metrics import confusion_matrix, scores
from rnnkit.classify.model import Classifier
from rnnkit.classify.tasks import is_balanced, make_task
from rnnkit.classify.train import class_weight_vector

pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------- tasks


@pytest.mark.parametrize("name", ["brackets", "languages", "majority"])
def test_tasks_are_deterministic_disjoint_and_labelled_right(name):
    a, b = make_task(name, 3, 300, 40, 50), make_task(name, 3, 300, 40, 50)
    assert a == b and make_task(name, 4, 300, 40, 50) != a
    assert (len(a.train), len(a.val), len(a.test)) == (300, 40, 50)
    texts = [t for split in a for t, _ in split]
    assert len(set(texts)) == len(texts)  # no string in two splits
    labels = {lab for _, lab in a.train}
    assert len(labels) >= 2
    for text, label in a.train:
        if name == "brackets":
            assert label == ("balanced" if is_balanced(text) else "unbalanced") and len(text) % 2 == 0
        elif name == "majority":
            counts = {c: text.count(c) for c in "abc"}
            assert counts[label] > max(v for c, v in counts.items() if c != label)


def test_is_balanced():
    assert is_balanced("([])[]") and is_balanced("")
    assert not is_balanced("([)]") and not is_balanced("((") and not is_balanced(")(")


def test_task_options_are_checked():
    with pytest.raises(ValueError, match="unknown task"):
        make_task("parity")
    with pytest.raises(ValueError, match="has no option --alphabet"):
        make_task("brackets", alphabet="ab")
    with pytest.raises(ValueError, match="--min-len <= --max-len"):
        make_task("majority", min_len=9, max_len=3)
    with pytest.raises(ValueError, match="too few distinct strings"):
        make_task("brackets", 0, 500, 10, 10, min_len=2, max_len=4)


# ---------------------------------------------------------------- split


def labelled(n_per_class, seed=0):
    rng = np.random.default_rng(seed)
    pairs = [(f"text {lab} {i} {rng.integers(1 << 30)}", lab) for lab, n in n_per_class.items() for i in range(n)]
    return [pairs[i] for i in rng.permutation(len(pairs))]


def test_stratified_split_is_deterministic_and_stratified():
    pairs = labelled({"pos": 400, "neg": 100, "odd one": 50})
    s = stratified_split(pairs, seed=1)
    assert s == stratified_split(pairs, seed=1) and s != stratified_split(pairs, seed=2)
    for part, frac in ((s.test, 0.1), (s.val, 0.1)):
        counts = {lab: sum(1 for _, x in part if x == lab) for lab in ("pos", "neg", "odd one")}
        assert counts == {"pos": 40 * frac * 10, "neg": 10 * frac * 10, "odd one": 5 * frac * 10}
    assert sorted(s.train + s.val + s.test) == sorted(pairs)
    order = {p: i for i, p in enumerate(pairs)}
    assert all(order[a] < order[b] for a, b in zip(s.train, s.train[1:]))  # file order kept


def test_duplicate_texts_stay_in_one_split():
    pairs = labelled({"a": 60, "b": 60})
    pairs += [(t, lab) for t, lab in pairs[:30]]  # every one of 30 texts twice
    s = stratified_split(pairs, seed=0)
    sets = [{t for t, _ in part} for part in s]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])


def test_split_errors():
    with pytest.raises(PairsError, match="too few examples"):
        stratified_split([("a", "x"), ("b", "y"), ("c", "x")], 0)
    with pytest.raises(ValueError, match="val_frac"):
        stratified_split(labelled({"a": 10, "b": 10}), 0, val_frac=1.5)


def test_read_examples_errors(tmp_path):
    f = tmp_path / "f.tsv"
    f.write_text("good text\tpos\nno tab here\n")
    with pytest.raises(PairsError, match=r"f.tsv:2: expected text<TAB>label, found no tab"):
        read_examples(str(f))
    f.write_text("good\tpos\n\tneg\n")
    with pytest.raises(PairsError, match=r":2: empty text"):
        read_examples(str(f))
    f.write_text("the cat sat\tD N V\n\na dog\tD\n")
    with pytest.raises(PairsError, match=r":3: 2 tokens \(word\) but 1 tags"):
        read_examples(str(f), "word", per_step=True)
    with pytest.raises(PairsError, match="not found"):
        read_examples(str(tmp_path / "missing.tsv"))


# ---------------------------------------------------------------- labels, weights, metrics


def test_labels_kept_as_given_and_unknown_rejected():
    labels = Labels(["b", "A b", "a", "b"])
    assert labels.names == ["A b", "a", "b"]
    np.testing.assert_array_equal(labels.encode(["b", "A b"]), [2, 0])
    with pytest.raises(ValueError, match="unknown label 'c'"):
        labels.encode(["a", "c"])
    with pytest.raises(ValueError, match="at least two classes"):
        Labels(["only"])


def test_class_weights():
    labels = Labels(["a", "b", "c"])
    targets = np.array([0] * 6 + [1] * 3 + [2] * 1)
    np.testing.assert_allclose(class_weight_vector("balanced", labels, targets), [10 / 18, 10 / 9, 10 / 3], rtol=1e-6)
    assert class_weight_vector("none", labels, targets) is None
    np.testing.assert_allclose(class_weight_vector("c=4,a=0.5", labels, targets), [0.5, 1, 4])
    for bad in ("d=2", "a", "a=x", "a=-1"):
        with pytest.raises(ValueError, match="--class-weights"):
            class_weight_vector(bad, labels, targets)


def test_metrics_match_hand_counts():
    true = np.array([0, 0, 0, 1, 1, 2])
    pred = np.array([0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(confusion_matrix(true, pred, 3), [[2, 1, 0], [0, 1, 1], [0, 0, 1]])
    s = scores(true, pred, ["x", "y", "z"])
    f1 = [2 * 1 * (2 / 3) / (1 + 2 / 3), 0.5, 2 * 0.5 / 1.5]
    assert s["accuracy"] == pytest.approx(4 / 6) and s["macro_f1"] == pytest.approx(np.mean(f1))
    assert s["per_class"]["y"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    # a class absent from truth and predictions does not count in macro-F1 (scikit-learn's default)
    assert scores(true, pred, ["x", "y", "z", "w"])["macro_f1"] == pytest.approx(np.mean(f1))


# ---------------------------------------------------------------- the model

PAIRS = [("abcab", "x"), ("ca", "y"), ("bbbacab", "z"), ("a", "x"), ("cabba", "y")]
TAGGED = [("a b c a b", "P Q P P Q"), ("c a", "Q P"), ("b b b a c a b", "P P Q Q P P Q"), ("a", "Q")]


def make_model(per_step=False, pool="last", cell="lstm", bidirectional=True, layers=2, dtype=np.float64,
               backend=None):
    pairs = TAGGED if per_step else PAIRS
    tokens = "word" if per_step else "char"
    vocab, labels = build_vocab(pairs, tokens, per_step)
    model = Classifier(vocab, labels, cell, layers, 5, 4, bidirectional, "last" if per_step else pool,
                       per_step=per_step, dtype=dtype, seed=3, backend=backend)
    for p in model.params.values():  # larger weights: gradients far from zero
        p *= 2
    batch = Encoded(pairs, tokens, per_step, vocab, labels).batch(range(len(pairs)))
    return model, batch


def numeric_grad(f, x, eps=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        up = f()
        x[i] = old - eps
        down = f()
        x[i] = old
        g[i] = (up - down) / (2 * eps)
    return g


CASES = [("last", "lstm", False), ("mean", "gru", False), ("max", "rnn", False), ("attention", "lstm", False),
         ("last", "gru", True)]


@pytest.mark.parametrize("pool,cell,per_step", CASES)
def test_gradients_match_finite_differences(pool, cell, per_step):
    model, batch = make_model(per_step, pool, cell)
    weights = np.array([0.5, 2.0, 1.5][:len(model.labels)])
    model.zero_grad()
    model.loss_and_grad(batch, weights)
    loss = lambda: model.evaluate_batch(batch, weights)[0] / model.evaluate_batch(batch, weights)[1]  # noqa: E731
    for name in ("embed.weight", "rnn.weight_hh_l1_reverse", "rnn.bias_ih_l0", "head.weight", "pool.w_key"):
        if name in model.params:
            np.testing.assert_allclose(model.grads[name], numeric_grad(loss, model.params[name]), rtol=1e-5,
                                       atol=1e-8, err_msg=name)


class TorchClassifier(torch.nn.Module):
    """The same model in PyTorch: packed sequences, torch pooling, CrossEntropyLoss(weight=...)."""

    def __init__(self, model):
        super().__init__()
        c = model.config
        V, K, D = len(model.vocab), len(model.labels), 2 if c["bidirectional"] else 1
        rnn = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[c["cell"]]
        self.embed = torch.nn.Embedding(V, c["embed"]).double()
        self.rnn = rnn(c["embed"], c["hidden"], c["layers"], bidirectional=c["bidirectional"]).double()
        self.head = torch.nn.Linear(D * c["hidden"], K).double()
        self.pool, self.per_step, self.H = c["pool"], c["per_step"], c["hidden"]
        p = model.params
        with torch.no_grad():
            self.embed.weight.copy_(torch.tensor(p["embed.weight"]))
            for k, v in self.rnn.named_parameters():
                v.copy_(torch.tensor(p[f"rnn.{k}"]))
            self.head.weight.copy_(torch.tensor(p["head.weight"]))
            self.head.bias.copy_(torch.tensor(p["head.bias"]))
        self.attn = {k[5:]: torch.tensor(v, requires_grad=True) for k, v in p.items() if k.startswith("pool.")}

    def forward(self, ids, lengths, targets, weights):
        T = ids.shape[0]
        x = self.embed(torch.tensor(ids))
        packed = torch.nn.utils.rnn.pack_padded_sequence(x, torch.tensor(lengths), enforce_sorted=False)
        y, _ = torch.nn.utils.rnn.pad_packed_sequence(self.rnn(packed)[0], total_length=T)
        valid = torch.arange(T)[:, None] < torch.tensor(lengths)[None, :]
        t = torch.tensor(targets)
        if self.per_step:
            feats, t = y[valid], t[valid]
        elif self.pool == "last":
            n = torch.tensor(lengths) - 1
            feats = torch.cat([y[n, torch.arange(len(lengths)), :self.H], y[0, :, self.H:]], 1)
        elif self.pool == "mean":
            feats = y.sum(0) / torch.tensor(lengths, dtype=y.dtype)[:, None]
        elif self.pool == "max":
            feats = y.masked_fill(~valid[:, :, None], float("-inf")).max(0).values
        else:
            a = self.attn
            e = torch.tanh(y @ a["w_key"].T + a["w_query"][:, 0]) @ a["v"]
            feats = (torch.softmax(e.masked_fill(~valid, float("-inf")), 0)[:, :, None] * y).sum(0)
        return torch.nn.functional.cross_entropy(self.head(feats), t, weight=torch.tensor(weights))


@pytest.mark.parametrize("pool,cell,per_step", CASES)
def test_loss_and_gradients_match_torch(pool, cell, per_step):
    model, batch = make_model(per_step, pool, cell)
    weights = np.array([0.5, 2.0, 1.5][:len(model.labels)])
    tm = TorchClassifier(model)
    model.zero_grad()
    loss = model.loss_and_grad(batch, weights)
    tloss = tm(batch.ids, batch.lengths, batch.targets, weights)
    tloss.backward()
    assert loss == pytest.approx(tloss.item(), rel=1e-10)
    np.testing.assert_allclose(model.grads["embed.weight"], tm.embed.weight.grad.numpy(), rtol=1e-8, atol=1e-11)
    for k, v in tm.rnn.named_parameters():
        np.testing.assert_allclose(model.grads[f"rnn.{k}"], v.grad.numpy(), rtol=1e-8, atol=1e-11, err_msg=k)
    np.testing.assert_allclose(model.grads["head.weight"], tm.head.weight.grad.numpy(), rtol=1e-8, atol=1e-11)
    for k, v in tm.attn.items():
        np.testing.assert_allclose(model.grads[f"pool.{k}"], v.grad.numpy(), rtol=1e-8, atol=1e-11, err_msg=k)


@pytest.mark.parametrize("pool", ["last", "mean", "max", "attention"])
def test_padding_never_leaks_into_predictions(pool):
    model, batch = make_model(False, pool, bidirectional=True)
    together = model.probabilities(batch)
    alone = np.concatenate([model.probabilities(batch._replace(ids=batch.ids[:n, [b]], lengths=batch.lengths[[b]],
                                                               targets=batch.targets[[b]]))
                            for b, n in enumerate(batch.lengths)])
    np.testing.assert_allclose(together, alone, rtol=1e-12, atol=1e-14)
    noisy = batch.ids.copy()
    pad = np.arange(batch.ids.shape[0])[:, None] >= batch.lengths[None, :]
    noisy[pad] = 5  # a real token id where padding was
    np.testing.assert_array_equal(model.probabilities(batch._replace(ids=noisy)), together)


def test_per_step_shapes():
    model, batch = make_model(per_step=True)
    n = int(batch.lengths.sum())
    probs = model.probabilities(batch)
    assert probs.shape == (n, len(model.labels)) and np.allclose(probs.sum(axis=1), 1)
    _, weight, true, pred = model.evaluate_batch(batch)
    assert weight == n and true.shape == pred.shape == (n,)
    per_text = model.predict_texts([["a", "b", "c"], ["c"]])
    assert [p.shape for p in per_text] == [(3, 2), (1, 2)]
    with pytest.raises(ValueError, match="the text is empty"):
        model.predict_texts([[]])


def test_reference_backend_matches_native():
    for pool in ("max", "attention"):
        native, batch = make_model(False, pool, backend="native")
        ref, _ = make_model(False, pool, backend="reference")
        for m in (native, ref):
            m.zero_grad()
        assert native.loss_and_grad(batch) == pytest.approx(ref.loss_and_grad(batch), rel=1e-12)
        for k in native.grads:
            np.testing.assert_allclose(native.grads[k], ref.grads[k], rtol=1e-10, atol=1e-13, err_msg=k)


def test_encoded_rejects_unknown_labels_and_empty_texts():
    vocab, labels = build_vocab(PAIRS, "char", False)
    with pytest.raises(ValueError, match="example 2 of test.tsv: unknown label 'w'"):
        Encoded([("ab", "x"), ("ab", "w")], "char", False, vocab, labels, "test.tsv")
    with pytest.raises(ValueError, match="example 1 of the data has no tokens"):
        Encoded([("   ", "x")], "word", False, vocab, labels)
