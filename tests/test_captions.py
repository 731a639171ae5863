"""Image captioning: the shapes scenes and their grammar, the features/captions loader and its errors, region
attention against the reference and finite differences, the captioner's gradients (finite differences,
the reference attention, PyTorch), decoding through the shared seq2seq decoder, and a tiny model that
learns ten images exactly."""
import re

import numpy as np
import pytest

from rnnkit import attention as native_attention
from rnnkit.captions import data, shapes
from rnnkit.captions.data import CaptionsError, files_spec, load_data, read_captions, read_features, shapes_spec
from rnnkit.captions.model import Captioner
from rnnkit.captions.train import caption_all, evaluate
from rnnkit.optim import Adam
from rnnkit.reference import attention as ref_attention
from rnnkit.seq2seq.decode import beam_search, greedy
from rnnkit.seq2seq.metrics import corpus_bleu, corpus_bleu_multi
from rnnkit.seq2seq.vocab import TokenVocab

pytestmark = pytest.mark.usefixtures("one_thread")

# ---------------------------------------------------------------------------------------------- scenes

_NOUN = re.compile(r"(a|two|three) (\w+) (circle|square|triangle)s?")
_COUNT = {"a": 1, "two": 2, "three": 3}


def parse(caption):
    """(nouns [(count, colour, shape)], relations between consecutive nouns) of a caption."""
    nouns = [(_COUNT[m.group(1)], m.group(2), m.group(3)) for m in _NOUN.finditer(caption)]
    between = _NOUN.split(caption)[4::4]  # the text between consecutive nouns
    return nouns, [b.strip().replace("to the ", "") for b in between[:len(nouns) - 1]]


def scenes(n=300, lo=1, hi=3, seed=0):
    rng = np.random.default_rng(seed)
    return [shapes.random_scene(rng, lo, hi) for _ in range(n)]


def test_captions_describe_the_scene():
    for scene in scenes():
        objects = sorted((o.colour, o.shape) for o in scene)
        caps = shapes.captions(scene)
        assert caps[0] == shapes.canonical(scene) and len(set(caps)) == len(caps) >= 2
        for c in caps:
            nouns, rels = parse(c)
            assert sorted((col, sh) for k, col, sh in nouns for _ in range(k)) == objects, c
            assert set(c.split()) <= set(shapes.WORDS)
        nouns, rels = parse(caps[0])
        first = {}
        for o in scene:
            first.setdefault((o.colour, o.shape), o)
        firsts = [first[(col, sh)] for _, col, sh in nouns]
        assert firsts == sorted(firsts, key=lambda o: (o.row, o.col))  # groups in reading order
        for a, b, rel in zip(firsts, firsts[1:], rels):
            assert rel == ("above" if a.row < b.row else "left of"), caps[0]
        if len(scene) == 1:
            o = scene[0]
            assert caps[0].endswith(f"at the {shapes.POSITIONS[o.row][o.col]}")
        if len(nouns) > 1:  # read backwards with the inverse relations
            back_nouns, back_rels = parse(caps[2])
            assert back_nouns == nouns[::-1]
            inverse = {"above": "below", "left of": "right of"}
            assert back_rels == [inverse[r] for r in rels[::-1]]


def test_a_known_scene_and_its_phrasings():
    O = shapes.Obj
    scene = (O(0, 0, "red", "circle"), O(0, 2, "blue", "square"), O(2, 1, "green", "triangle"))
    assert shapes.captions(scene) == [
        "a red circle left of a blue square above a green triangle",
        "there is a red circle left of a blue square above a green triangle",
        "a green triangle below a blue square right of a red circle",
        "a red circle to the left of a blue square above a green triangle"]
    two = (O(0, 1, "green", "triangle"), O(1, 2, "green", "triangle"), O(2, 0, "yellow", "circle"))
    assert shapes.canonical(two) == "two green triangles above a yellow circle"
    assert shapes.canonical((O(1, 1, "white", "square"),)) == "a white square at the center"


def test_pictures_show_the_scene():
    size = 48
    for scene in scenes(60):
        img = shapes.render(scene, size)
        assert img.shape == (size, size, 3) and img.dtype == np.float32 and 0 <= img.min() and img.max() <= 1
        cell = size // shapes.GRID
        occupied = {(o.row, o.col): o for o in scene}
        for r in range(shapes.GRID):
            for c in range(shapes.GRID):
                centre = img[r * cell + cell // 2, c * cell + cell // 2]
                if (r, c) in occupied:
                    want = np.array(shapes.COLOURS[occupied[(r, c)].colour])
                    scale = centre / want
                    assert np.allclose(scale, scale[0], atol=1e-5) and 0.84 < scale[0] <= 1.0
                else:
                    assert centre.max() < 0.1
    a, b = scenes(2)
    np.testing.assert_array_equal(shapes.render(a, 32), shapes.render(a, 32))
    assert not np.array_equal(shapes.render(a, 32), shapes.render(b, 32))


def test_regions_cut_the_image_in_reading_order():
    img = np.arange(2 * 8 * 8 * 3, dtype=np.float32).reshape(2, 8, 8, 3)
    r = shapes.regions(img, 2)
    assert r.shape == (2, 4, 4 * 4 * 3)
    np.testing.assert_array_equal(r[1, 2], img[1, 4:, :4].reshape(-1))  # bottom-left region
    np.testing.assert_array_equal(r[0, 1], img[0, :4, 4:].reshape(-1))
    odd = shapes.regions(img, 3)  # 8 pixels in 3 regions: 3 each, the image padded with black to 9
    assert odd.shape == (2, 9, 3 * 3 * 3)
    np.testing.assert_array_equal(odd[1, 4].reshape(3, 3, 3), img[1, 3:6, 3:6])
    np.testing.assert_array_equal(odd[1, 8].reshape(3, 3, 3)[:2, :2], img[1, 6:, 6:])
    assert not odd[1, 8].reshape(3, 3, 3)[2].any() and not odd[1, 8].reshape(3, 3, 3)[:, 2].any()
    d = load_data(shapes_spec(image_size=32, val=2, test=2))  # 32x32 pictures in the default 3x3 regions
    assert (d.P, d.D) == (9, 11 * 11 * 3) and d.train_batch(0, 0, 4)[0].shape == (4, 9, 363)


def test_held_out_scenes_are_deterministic_bounded_and_never_trained_on():
    a = shapes.held_out_scenes(3, 400, 1, 3)
    assert a == shapes.held_out_scenes(3, 400, 1, 3) and a != shapes.held_out_scenes(4, 400, 1, 3)
    assert len(set(a)) == 400
    assert sum(len(s) == 1 for s in a) <= shapes.scene_count(1) // 10
    with pytest.raises(ValueError, match="held out"):
        shapes.held_out_scenes(0, 20, 1, 1)
    d = load_data(shapes_spec(image_size=24, grid=2, min_objects=1, max_objects=2, val=40, test=200, seed=1))
    held = {r.tobytes() for r in np.concatenate([d.test.regions, d.val.regions])}
    for step in range(40):
        regions, caps = d.train_batch(0, step, 64)
        assert not held & {r.tobytes() for r in regions}
    r1, c1 = d.train_batch(5, 7, 16)
    r2, c2 = d.train_batch(5, 7, 16)
    np.testing.assert_array_equal(r1, r2)
    assert c1 == c2 and d.train_batch(5, 8, 16)[1] != c1


def test_training_captions_are_mostly_canonical_but_varied():
    d = load_data(shapes_spec(image_size=24, grid=2, val=10, test=10))
    first_words = set()
    for step in range(30):
        regions, caps = d.train_batch(0, step, 32)
        first_words |= {c[0] for c in caps}
    assert {"a", "there", "at"} <= first_words  # several phrasings in training
    assert data.CANONICAL_SHARE > 0.5


def test_shapes_options_are_checked():
    for kwargs, match in (({"image_size": 48, "grid": 13}, "--grid"), ({"image_size": 8}, "--image-size"),
                          ({"min_objects": 2, "max_objects": 1}, "objects"), ({"max_objects": 4}, "objects"),
                          ({"val": 0}, "--val-size")):
        with pytest.raises(ValueError, match=match):
            shapes_spec(**kwargs)


# ---------------------------------------------------------------------------------------------- files

def write_features(path, array, name="features"):
    np.savez(path, **{name: array})
    return str(path)


def test_features_and_captions_files(tmp_path):
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((40, 6)).astype(np.float32)
    fpath = write_features(tmp_path / "f.npz", feats)
    lines = [f"{i}\tA Dog runs, fast!" if i % 2 else f"{i}\ta cat sits" for i in range(40)]
    lines += [f"{i}\tan animal {'zebra' if i == 3 else ''}" for i in range(40)]
    cpath = tmp_path / "c.tsv"
    cpath.write_text("\n".join(lines) + "\n\n")
    x = read_features(fpath)
    assert x.shape == (40, 1, 6)
    caps = read_captions(str(cpath), 40)
    assert caps[1] == [["a", "dog", "runs", ",", "fast", "!"], ["an", "animal"]]
    spec = files_spec(fpath, str(cpath), min_count=2, seed=3)
    d = load_data(spec)
    assert (d.P, d.D) == (1, 6) and len(d.test) == len(d.val) == 2
    ids = [set(d.test.ids), set(d.val.ids), {i for i, _ in d.pairs}]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2]) and len(set().union(*ids)) == 40
    assert "zebra" not in d.vocab and "dog" in d.vocab  # seen once: <unk>
    assert d.test.references[0][0] == caps[d.test.ids[0]][0]  # the file's first caption is canonical
    np.testing.assert_array_equal(d.test.regions[:, 0], feats[d.test.ids])
    r1, c1 = d.train_batch(0, 3, 8)
    r2, c2 = d.train_batch(0, 3, 8)
    np.testing.assert_array_equal(r1, r2)
    assert c1 == c2 and r1.shape == (8, 1, 6)
    regions3 = rng.standard_normal((40, 4, 5))
    assert read_features(write_features(tmp_path / "g.npz", regions3, "x")).shape == (40, 4, 5)
    cpath.write_text("0\tchanged\n")
    with pytest.raises(CaptionsError, match="changed"):
        load_data(spec)


@pytest.mark.parametrize("content,match", [
    ("0\ta dog\n1 a cat\n", r":2: expected image_index<TAB>caption"),
    ("0\ta dog\nx\ta cat\n", r":2: image index 'x' is not an integer"),
    ("0\ta dog\n\n7\ta cat\n", r":3: image index 7 is not in the features \(they hold 5 images, 0..4\)"),
    ("0\ta dog\n-1\ta cat\n", r"image index -1 is not in the features"),
    ("0\ta dog\n1\t  \n", r":2: empty caption"),
    ("1\t?!\n", None),
    ("\n\n", "holds no captions"),
])
def test_captions_file_errors(tmp_path, content, match):
    p = tmp_path / "c.tsv"
    p.write_text(content)
    if match is None:  # punctuation is a token: not empty
        assert read_captions(str(p), 5) == {1: [["?", "!"]]}
        return
    with pytest.raises(CaptionsError, match=match):
        read_captions(str(p), 5)


def test_features_file_errors(tmp_path):
    for array, match in ((np.zeros(5), r"shape \(N, F\) or \(N, P, F\)"), (np.zeros((2, 3, 4, 5)), "got dtype"),
                         (np.array(["a", "b"]), "numeric"), (np.zeros((0, 3)), "non-empty"),
                         (np.array([[1.0, np.nan]]), "NaN")):
        with pytest.raises(CaptionsError, match=match):
            read_features(write_features(tmp_path / "f.npz", array))
    np.savez(tmp_path / "two.npz", a=np.zeros((2, 3)), b=np.zeros((2, 3)))
    with pytest.raises(CaptionsError, match="name the features array 'features'"):
        read_features(str(tmp_path / "two.npz"))
    (tmp_path / "bad.npz").write_text("not numpy")
    with pytest.raises(CaptionsError, match="not a NumPy"):
        read_features(str(tmp_path / "bad.npz"))
    with pytest.raises(CaptionsError, match="not found"):
        files_spec(str(tmp_path / "missing.npz"), str(tmp_path / "bad.npz"))
    fpath = write_features(tmp_path / "f.npz", np.zeros((2, 3)))
    (tmp_path / "c.tsv").write_text("0\ta\n1\tb\n")
    with pytest.raises(CaptionsError, match="at least 3 images"):
        load_data(files_spec(fpath, str(tmp_path / "c.tsv")))


def test_multi_reference_bleu():
    h = ["the cat sat on the mat".split()]
    assert corpus_bleu_multi(h, [["the cat sat on a mat".split(), "the cat sat on the mat".split()]]) == 100.0
    one = corpus_bleu(h, ["the cat sat on a mat".split()])
    assert corpus_bleu_multi(h, [["the cat sat on a mat".split()]]) == one and 0 < one < 100
    # "a cat sat on the rug" adds the bigram "on the" (clipped counts per n-gram over the references)
    two = corpus_bleu_multi(h, [["the cat sat on a mat".split(), "a cat sat on the rug".split()]])
    assert two > one
    # brevity: the reference length closest to the output's, so a long extra reference costs nothing
    assert corpus_bleu_multi(h, [["the cat sat on the mat".split(), "the cat sat on the mat today".split()]]) \
        == 100.0
    with pytest.raises(ValueError, match="at least one reference"):
        corpus_bleu_multi(h, [[]])


# ---------------------------------------------------------------------------------------------- attention

@pytest.mark.parametrize("kind", ["dot", "general", "additive"])
def test_region_attention_native_reference_and_finite_differences(kind):
    """Queries = decoder states (B, T, H), keys = region features (B, P, F), no mask: the native kernel
    equals the reference, and the reference's gradients equal central differences (float64)."""
    rng = np.random.default_rng(0)
    B, T, P, H = 3, 5, 9, 6
    F = H if kind == "dot" else 7
    params = ref_attention.init_params(kind, H, F, 4 if kind == "additive" else None, np.float64, rng)
    q, k = rng.standard_normal((B, T, H)), rng.standard_normal((B, P, F))
    dctx = rng.standard_normal((B, T, F))
    ref = ref_attention.forward(kind, q, k, params)
    nat = native_attention.forward(kind, q, k, params)
    np.testing.assert_allclose(nat.context, ref.context, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(nat.weights, ref.weights, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(ref.weights.sum(-1), 1.0)
    grads_ref = ref_attention.backward(ref.cache, dctx)
    grads_nat = native_attention.backward(nat.cache, dctx)
    for a, b in zip(grads_ref[:2], grads_nat[:2]):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12)
    for name in params:
        np.testing.assert_allclose(grads_nat[2][name], grads_ref[2][name], rtol=1e-10, atol=1e-12)

    def loss():
        return float(np.sum(ref_attention.forward(kind, q, k, params, training=False).context * dctx))

    eps = 1e-6
    for arr, grad in [(q, grads_ref[0]), (k, grads_ref[1])] + [(params[n], grads_ref[2][n]) for n in params]:
        for flat in rng.choice(arr.size, size=min(6, arr.size), replace=False):
            idx = np.unravel_index(flat, arr.shape)
            old = arr[idx]
            arr[idx] = old + eps
            up = loss()
            arr[idx] = old - eps
            down = loss()
            arr[idx] = old
            assert grad[idx] == pytest.approx((up - down) / (2 * eps), rel=1e-6, abs=1e-9)


# ---------------------------------------------------------------------------------------------- model

VOCAB = TokenVocab(["a", "b", "c", "d"])


def tiny_inputs(rng, B=3, P=4, D=5):
    regions = rng.standard_normal((B, P, D))
    caps = [["a", "b", "c"], ["d"], []][:B]
    return regions, caps


def check_gradients(model, loss, rng, per_param=4):
    model.zero_grad()
    loss()
    analytic = {k: g.copy() for k, g in model.grads.items()}
    eps = 1e-6
    for name, p in model.params.items():
        assert np.any(analytic[name] != 0), f"{name} got no gradient"
        for flat in rng.choice(p.size, size=min(per_param, p.size), replace=False):
            idx = np.unravel_index(flat, p.shape)
            old = p[idx]
            p[idx] = old + eps
            up = loss()
            p[idx] = old - eps
            down = loss()
            p[idx] = old
            assert analytic[name][idx] == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-9), (name, idx)


@pytest.mark.parametrize("cell,encoder,init,attention", [
    ("lstm", "mlp", "mlp", "none"), ("lstm", "linear", "linear", "dot"), ("lstm", "mlp", "linear", "general"),
    ("lstm", "mlp", "mlp", "additive"), ("gru", "linear", "mlp", "additive"), ("rnn", "mlp", "linear", "general")])
def test_captioner_gradient_by_finite_differences(cell, encoder, init, attention):
    """Every parameter, float64, reference attention, 2 layers, captions of different lengths (one empty)."""
    rng = np.random.default_rng(1)
    m = Captioner(5, 4, VOCAB, cell, layers=2, hidden=6, embed=3, encoder=encoder, init=init, attention=attention,
                  attn_size=5 if attention == "additive" else None, dtype=np.float64, seed=2,
                  attention_backend="reference")
    regions, caps = tiny_inputs(rng)
    check_gradients(m, lambda: m.loss_and_grad(regions, caps), rng)


def test_native_attention_gives_the_reference_loss_and_gradients():
    rng = np.random.default_rng(2)
    regions, caps = tiny_inputs(rng)
    for kind in ("dot", "general", "additive"):
        a, b = (Captioner(5, 4, VOCAB, "lstm", 1, 6, 3, attention=kind, dtype=np.float64, seed=4,
                          attention_backend=be) for be in ("reference", "native"))
        assert a.loss_and_grad(regions, caps) == pytest.approx(b.loss_and_grad(regions, caps), rel=1e-12)
        for k in a.grads:
            np.testing.assert_allclose(a.grads[k], b.grads[k], rtol=1e-9, atol=1e-12)


def test_captioner_matches_pytorch():
    """The same model written in torch (Linear, LSTM, additive attention, cross-entropy): loss and every
    gradient agree in float64."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    B, P, D, H, E, F, L = 3, 4, 5, 6, 3, 7, 2
    m = Captioner(D, P, VOCAB, "lstm", L, H, E, feature_size=F, encoder="mlp", attention="additive", attn_size=5,
                  dtype=np.float64, seed=5)
    regions, caps = tiny_inputs(rng, B, P, D)
    m.zero_grad()
    loss = m.loss_and_grad(regions, caps)
    tgt_in, tgt_out, w = m.targets(caps)

    t = {k: torch.tensor(v, requires_grad=True) for k, v in m.params.items()}
    lstm = torch.nn.LSTM(E, H, L).double()
    with torch.no_grad():
        for name, p in lstm.named_parameters():
            p.copy_(t[f"decoder.{name}"])
    x = torch.tensor(regions)
    hidden = torch.relu(x @ t["regions.proj.weight"].T + t["regions.proj.bias"] + t["regions.pos"])
    f = (hidden @ t["regions.out.weight"].T + t["regions.out.bias"]
         + (hidden.mean(1) @ t["regions.ctx.weight"].T)[:, None, :])  # (B, P, F)
    u = torch.relu(f.mean(1) @ t["init.u.weight"].T + t["init.u.bias"])
    h0, c0 = ((u @ t[f"init.{k}.weight"].T + t[f"init.{k}.bias"]).reshape(B, L, H).transpose(0, 1).contiguous()
              for k in "hc")
    emb = t["tgt_embed.weight"][torch.tensor(tgt_in, dtype=torch.long)]
    s, _ = lstm(emb, (h0, c0))  # (T, B, H)
    q = s.transpose(0, 1) @ t["attention.w_query"].T  # (B, T, A)
    kk = f @ t["attention.w_key"].T  # (B, P, A)
    e = torch.tanh(q[:, :, None, :] + kk[:, None, :, :]) @ t["attention.v"]  # (B, T, P)
    ctx = torch.softmax(e, -1) @ f  # (B, T, F)
    feat = torch.cat([s, ctx.transpose(0, 1)], 2).reshape(-1, H + F)
    logits = feat @ t["head.weight"].T + t["head.bias"]
    nll = torch.nn.functional.cross_entropy(logits, torch.tensor(tgt_out.reshape(-1), dtype=torch.long),
                                            reduction="none")
    wt = torch.tensor(w.reshape(-1))
    tl = (nll * wt).sum() / wt.sum()
    tl.backward()
    lstm_grads = {f"decoder.{n}": p.grad for n, p in lstm.named_parameters()}
    assert loss == pytest.approx(tl.item(), rel=1e-10)
    for k in m.params:
        g = lstm_grads[k] if k in lstm_grads else t[k].grad
        np.testing.assert_allclose(m.grads[k], g.numpy(), rtol=1e-8, atol=1e-11, err_msg=k)


def test_bad_model_arguments():
    with pytest.raises(ValueError, match="dot attention needs region features as wide"):
        Captioner(5, 4, VOCAB, hidden=6, feature_size=7, attention="dot")
    with pytest.raises(ValueError, match="encoder must be one of"):
        Captioner(5, 4, VOCAB, encoder="cnn")
    with pytest.raises(ValueError, match="attention must be one of"):
        Captioner(5, 4, VOCAB, attention="luong")
    m = Captioner(5, 4, VOCAB, hidden=6, embed=3)
    with pytest.raises(ValueError, match=r"regions must have shape \(B, 4, 5\)"):
        m.start(np.zeros((2, 3, 5), np.float32))


def test_decoding_is_the_shared_seq2seq_decoding():
    rng = np.random.default_rng(4)
    m = Captioner(5, 4, VOCAB, "gru", 1, 8, 4, attention="general", dtype=np.float64, seed=1)
    regions = rng.standard_normal((6, 4, 5))
    g = greedy(m.decoder, m.start(regions), 7, return_attention=True)
    b1 = beam_search(m.decoder, m.start(regions), 1, 7)
    assert [h.tokens for h in g] == [h[0].tokens for h in b1]
    assert [h.tokens for h in caption_all(m, regions, 1, 7, batch=4)] == [h.tokens for h in g]
    for h in g:  # one row of weights over the P regions per output step
        assert h.attention.shape == (h.length, 4)
        np.testing.assert_allclose(h.attention.sum(1), 1.0)
    beams = caption_all(m, regions, 4, 7)
    for gh, bh in zip(g, beams):
        assert bh.score >= gh.score - 1e-12  # the beam never returns worse than greedy


def test_a_tiny_model_learns_ten_images_exactly():
    d = load_data(shapes_spec(image_size=24, grid=2, val=10, test=10, seed=2))
    images = d.test
    canonical = [r[0] for r in images.references]
    m = Captioner(d.D, d.P, d.vocab, "lstm", 1, 48, 16, encoder="mlp", attention="additive", seed=0)
    opt = Adam(m.params, lr=1e-2)
    for _ in range(300):
        m.zero_grad()
        m.loss_and_grad(images.regions, canonical)
        opt.step(m.grads)
    scores = evaluate(m, images, beam=1, max_len=30)
    assert scores["exact_match"] == 1.0 and scores["token_acc"] == 1.0 and scores["bleu"] > 90
    assert evaluate(m, images, beam=3, max_len=30)["exact_match"] == 1.0
