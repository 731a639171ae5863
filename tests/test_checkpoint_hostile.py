"""Damaged and crafted checkpoints against `rnnkit.checkpoint.load`, the model loaders and the CLIs
that read them (`sample`, `eval-charlm`, `translate`, `eval-seq2seq`): every file gives one line naming
the file and what is wrong (CheckpointError, a ValueError), a non-zero exit and no traceback from the
CLI, and nothing in the file is ever run (pickles are never unpickled)."""
import io
import json
import os
import shutil
import zipfile

import numpy as np
import pytest

from rnnkit import checkpoint
from rnnkit.charlm.model import CharLM
from rnnkit.charlm.train import TrainConfig as LMConfig
from rnnkit.charlm.train import train as train_lm
from rnnkit.checkpoint import CheckpointError
from rnnkit.cli import main as cli
from rnnkit.seq2seq.data import task_spec
from rnnkit.seq2seq.model import Seq2Seq
from rnnkit.seq2seq.train import TrainConfig as S2SConfig
from rnnkit.seq2seq.train import train as train_s2s

QUIET = dict(progress=False, log=lambda s: None)
TEXT = "".join(f"def f{i}(x):\n    return x * {i}\n\n" for i in range(40))

_ran = []


def _payload(*args):
    _ran.append(args)
    return 0


class _Evil:
    def __reduce__(self):
        return (_payload, ("ran",))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    train_lm(LMConfig(layers=1, hidden=8, embed=4, batch=2, seq_len=8, steps=1, eval_every=1), TEXT, str(d / "lm"),
             **QUIET)
    data = task_spec("reverse", 0, {"train": 50, "val": 5, "test": 5}, min_len=2, max_len=4, alphabet="abcd")
    train_s2s(S2SConfig(data=data, hidden=8, embed=4, batch=8, attention="dot", steps=1, eval_every=1), str(d / "s2s"),
              **QUIET)
    (d / "input.txt").write_text("a b c\n")
    (d / "text.txt").write_text(TEXT)
    return d


def _contents(path):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return arrays, json.loads(arrays.pop("__meta__").tobytes())


def _write(path, arrays, meta):
    np.savez(path, __meta__=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)


def _first_param(arrays):
    return next(k for k in sorted(arrays) if k.startswith("model/rnn.weight_hh") or
                k.startswith("model/encoder") and "weight_hh" in k)


# Each damage takes (path of a good checkpoint) and rewrites it; the word is what the message must say.
def truncated(frac):
    def damage(path):
        data = open(path, "rb").read()
        open(path, "wb").write(data[: int(len(data) * frac)])
    return damage


def random_bytes(path):
    open(path, "wb").write(np.random.default_rng(0).bytes(os.path.getsize(path)))


def random_bytes_after_magic(path):
    open(path, "wb").write(b"PK\x03\x04" + np.random.default_rng(1).bytes(os.path.getsize(path)))


def flipped_in_data(path):
    data = bytearray(open(path, "rb").read())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("__meta__.npy")
    data[info.header_offset + 30 + len(info.filename) + 200] ^= 0xFF  # inside the stored metadata array
    open(path, "wb").write(bytes(data))


def missing_array(path):
    arrays, meta = _contents(path)
    del arrays[_first_param(arrays)]
    _write(path, arrays, meta)


def wrong_dtype(path):
    arrays, meta = _contents(path)
    k = _first_param(arrays)
    arrays[k] = arrays[k].astype(np.float64)
    _write(path, arrays, meta)


def wrong_shape(path):
    arrays, meta = _contents(path)
    k = _first_param(arrays)
    arrays[k] = arrays[k][:-1]
    _write(path, arrays, meta)


def future_version(path):
    arrays, meta = _contents(path)
    meta["version"] = checkpoint.FORMAT_VERSION + 1
    _write(path, arrays, meta)


def object_array(path):
    arrays, meta = _contents(path)
    arrays["model/evil"] = np.array([_Evil()], dtype=object)
    np.savez(path, __meta__=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)


def pickle_member(path):
    import pickle
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("evil.npy", pickle.dumps(_Evil()))


def non_array_member(path):
    import pickle
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("evil.pkl", pickle.dumps(_Evil()))


def huge_claimed_shape(path):
    arrays, meta = _contents(path)
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": (10 ** 12, 10 ** 6)})
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("model/huge.npy", buf.getvalue() + b"\0" * 64)


def huge_config(path):
    arrays, meta = _contents(path)
    meta["model"]["hidden"] = 10 ** 9
    _write(path, arrays, meta)


def deep_metadata(path):
    arrays, _ = _contents(path)
    np.savez(path, __meta__=np.frombuffer(b"[" * 100000 + b"]" * 100000, np.uint8), **arrays)


def metadata_not_json(path):
    arrays, _ = _contents(path)
    np.savez(path, __meta__=np.frombuffer(b"\xff\xfe not json", np.uint8), **arrays)


def other_format(path):
    arrays, meta = _contents(path)
    meta["format"] = "something-else"
    _write(path, arrays, meta)


def config_of_wrong_type(path):
    arrays, meta = _contents(path)
    meta["model"] = ["not", "a", "dict"]
    _write(path, arrays, meta)


DAMAGES = {
    "truncated-half": (truncated(0.5), "corrupt or truncated"),
    "truncated-tenth": (truncated(0.1), "corrupt or truncated"),
    "truncated-one-byte": (truncated(0.9999), "corrupt or truncated"),
    "random-bytes": (random_bytes, "not an .npz"),
    "random-after-magic": (random_bytes_after_magic, "corrupt or truncated"),
    "flipped-byte": (flipped_in_data, "corrupt"),
    "missing-array": (missing_array, "missing"),
    "wrong-dtype": (wrong_dtype, "dtype float64, expected float32"),
    "wrong-shape": (wrong_shape, "has shape"),
    "future-version": (future_version, "newer than this rnnkit"),
    "object-array": (object_array, "Python objects"),
    "pickle-member": (pickle_member, "corrupt"),
    "non-array-member": (non_array_member, "not an array"),
    "huge-claimed-shape": (huge_claimed_shape, "claims shape"),
    "huge-config": (huge_config, "hidden=1000000000"),
    "deep-metadata": (deep_metadata, "nested too deeply"),
    "metadata-not-json": (metadata_not_json, "corrupt"),
    "other-format": (other_format, "not a"),
    "config-of-wrong-type": (config_of_wrong_type, "inconsistent"),
}


def _damaged(runs, tmp_path, which, name):
    """A copy of the run with the checkpoint the loaders read by default (best.npz) damaged, and its path."""
    d = tmp_path / which
    shutil.copytree(runs / which, d)
    path = checkpoint.run_checkpoint(str(d))
    DAMAGES[name][0](path)
    return d, path


@pytest.mark.parametrize("name", sorted(DAMAGES))
@pytest.mark.parametrize("which", ["lm", "s2s"])
def test_the_loaders_refuse_with_one_line_naming_the_file(runs, tmp_path, which, name):
    d, path = _damaged(runs, tmp_path, which, name)
    loader = CharLM.load if which == "lm" else Seq2Seq.load
    with pytest.raises(CheckpointError) as e:
        loader(str(d))
    msg = str(e.value)
    assert "\n" not in msg and path in msg, msg
    assert DAMAGES[name][1] in msg, msg
    assert not _ran


def _commands(runs, d, which):
    if which == "lm":
        return [["sample", str(d), "--length", "5"], ["eval-charlm", str(d), "--text", str(runs / "text.txt"),
                                                       "--no-progress"]]
    return [["translate", str(d), str(runs / "input.txt")], ["eval-seq2seq", str(d)]]


@pytest.mark.parametrize("name", sorted(DAMAGES))
@pytest.mark.parametrize("which", ["lm", "s2s"])
def test_the_clis_print_one_line_and_fail(runs, tmp_path, capsys, which, name):
    d, path = _damaged(runs, tmp_path, which, name)
    for argv in _commands(runs, d, which):
        code = cli(argv)
        out, err = capsys.readouterr()
        assert code not in (0, None), (argv, out, err)
        assert len(err.strip().splitlines()) == 1 and err.startswith(f"rnnkit {argv[0]}: error: "), err
        assert path in err and DAMAGES[name][1] in err, err
        assert out == ""
    assert not _ran


def test_the_good_runs_load(runs, capsys):
    """The undamaged files the damages start from load and run (so the refusals above are the damage's)."""
    CharLM.load(str(runs / "lm"))
    Seq2Seq.load(str(runs / "s2s"))
    assert cli(["sample", str(runs / "lm"), "--length", "5", "--seed", "1"]) == 0
    assert cli(["translate", str(runs / "s2s"), str(runs / "input.txt")]) == 0
    capsys.readouterr()


@pytest.mark.parametrize("which", ["lm", "s2s"])
def test_any_single_flipped_byte_loads_the_same_model_or_is_refused(runs, tmp_path, which):
    """150 bytes spread over the file flipped in turn: the zip CRCs and the header checks catch the damage,
    or it falls where it changes nothing the model holds (e.g. a timestamp). Never another exception."""
    good = open(runs / which / "checkpoint.npz", "rb").read()
    loader = CharLM.load if which == "lm" else (lambda p: Seq2Seq.load(p)[0])
    d = tmp_path / "d"
    d.mkdir()
    (d / "checkpoint.npz").write_bytes(good)
    reference = {k: v.copy() for k, v in loader(str(d)).params.items()}
    refused = 0
    positions = np.unique(np.linspace(0, len(good) - 1, 150).astype(int))
    for pos in positions:
        data = bytearray(good)
        data[pos] ^= 0x5A
        (d / "checkpoint.npz").write_bytes(bytes(data))
        try:
            params = loader(str(d)).params
        except CheckpointError as e:
            assert str(d / "checkpoint.npz") in str(e)
            refused += 1
            continue
        for k, v in reference.items():
            assert np.array_equal(params[k], v), (pos, k)
    assert refused > 0.8 * len(positions)  # the rest fall in zip fields nothing reads (times, attributes)
    assert not _ran
