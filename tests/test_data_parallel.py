"""Data-parallel training under mpiexec (issue 13): 2 ranks on global batch B reproduce one process on
batch B (char-LM and seq2seq, float32 through the CLIs, float64 through the API), rank 0 alone writes,
resume, --minutes, dropout keyed by stream, and the errors a job of several ranks can meet.

Each job is launched with mpiexec in a subprocess with a timeout and runs the rnnkit these tests import
(PYTHON_DIR), on tiny models so that each takes a few seconds."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from test_distributed import LAUNCHER_VARS, PYTHON_DIR, _mpiexec

CHARLM = ["train-charlm", "--layers", "2", "--hidden", "32", "--embed", "16", "--seq-len", "16", "--batch", "8",
          "--steps", "30", "--eval-every", "1", "--val-sample", "2000", "--clip", "0.5", "--no-progress"]
SEQ2SEQ = ["train-seq2seq", "--task", "reverse", "--min-len", "2", "--max-len", "4", "--alphabet", "abcde",
           "--train-size", "300", "--val-size", "20", "--test-size", "30", "--hidden", "16", "--embed", "8",
           "--batch", "16", "--steps", "30", "--eval-every", "10", "--clip", "0.5", "--no-progress"]
# float32 runs of 30 steps: the sum over the batch is split in two and added, so only the rounding moves
F32_REL = 1e-4


def env():
    e = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARS}
    e.update(PYTHONPATH=PYTHON_DIR, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return e


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    rng = random.Random(0)
    words = ["alpha", "beta", "gamma", "delta", "the", "cat", "sat", "on", "mat", "\n"]
    path = tmp_path_factory.mktemp("text") / "t.txt"
    path.write_text(" ".join(rng.choice(words) for _ in range(6000)))
    return str(path)


def single(argv, cwd, timeout=120):
    """``rnnkit argv`` as one plain process (no launcher)."""
    return subprocess.run([sys.executable, "-m", "rnnkit.cli"] + argv, env=env(), cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def ranks(*per_rank, timeout=120):
    """One MPI job with one rank per (working directory, rnnkit argv) pair."""
    cmd = [_mpiexec()]
    for i, (cwd, argv) in enumerate(per_rank):
        cmd += ([":"] if i else []) + ["-n", "1", "-wdir", str(cwd), sys.executable, "-m", "rnnkit.cli"] + argv
    return subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=timeout)


def two(cwd, argv, other=None, timeout=120):
    """``rnnkit argv`` on 2 ranks, rank 1 in ``other`` (default: the same directory)."""
    other = other or cwd
    os.makedirs(other, exist_ok=True)
    return ranks((cwd, argv), (other, argv), timeout=timeout)


def with_flag(argv, flag, value=None):
    """``argv`` with ``flag`` set to ``value`` (None: removed)."""
    out = list(argv)
    if flag in out:
        i = out.index(flag)
        del out[i : i + 2]
    return out + ([flag, value] if value is not None else [])


def rows(out):
    with open(os.path.join(out, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def weights(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files if k.startswith("model/")}


def rel_diff(a, b):
    """max |a - b| / max |a| over a dict of arrays (or two arrays)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        return max(rel_diff(a[k], b[k]) for k in a)
    return float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-30))


def ok(job):
    assert job.returncode == 0, job.stdout + job.stderr
    return job


@pytest.mark.parametrize("command", ["charlm", "seq2seq"])
def test_two_ranks_reproduce_one_process_float32(tmp_path, text_file, command):
    argv = CHARLM + ["--text", text_file] if command == "charlm" else SEQ2SEQ
    one, both = str(tmp_path / "one"), str(tmp_path / "two")
    ok(single(argv + ["--out", one], tmp_path))
    job = ok(two(tmp_path, argv + ["--out", both]))
    a, b = rows(one), rows(both)
    assert [r["step"] for r in a] == [r["step"] for r in b]
    for key in ("train_loss", "val_loss"):
        x, y = np.array([r[key] for r in a]), np.array([r[key] for r in b])
        assert np.all(np.abs(x - y) <= F32_REL * np.abs(x)), (key, x, y)
    assert rel_diff(weights(os.path.join(one, "checkpoint.npz")), weights(os.path.join(both, "checkpoint.npz"))) < F32_REL
    assert job.stdout.count("best: step") == 1  # rank 0 alone prints
    assert "Traceback" not in job.stderr


# The API run of both tests below: 30 steps of CharLMRun or Seq2SeqRun in a given dtype, on however many
# ranks it is launched with; each rank saves its losses, validation figures and weights.
API_JOB = textwrap.dedent("""
    import sys
    import numpy as np
    from rnnkit import distributed as dist
    from rnnkit.models import single_threaded_blas
    dist.init()
    kind, dtype, out, dropout, keyed = sys.argv[1], np.dtype(sys.argv[2]), sys.argv[3], float(sys.argv[4]), sys.argv[5]
    with single_threaded_blas():
        if kind == "charlm":
            from rnnkit.charlm.data import split
            from rnnkit.charlm.train import CharLMRun, TrainConfig
            cfg = TrainConfig(layers=2, hidden=32, embed=16, seq_len=16, batch=8, steps=30, clip=0.5,
                              val_sample=2000, dropout=dropout)
            run = CharLMRun(cfg, *split(open(sys.argv[6]).read(), cfg.val_frac), dtype=dtype)
        else:
            from rnnkit.seq2seq.data import task_spec
            from rnnkit.seq2seq.train import Seq2SeqRun, TrainConfig
            data = task_spec("reverse", 0, {"train": 300, "val": 20, "test": 30}, min_len=2, max_len=4,
                             alphabet="abcde")
            cfg = TrainConfig(data=data, layers=2, hidden=16, embed=8, batch=16, steps=30, clip=0.5, dropout=dropout)
            run = Seq2SeqRun(cfg, dtype=dtype)
        if keyed == "keyed":
            run.model.use_stream_keyed_dropout(run.share.start)
        losses = [run.train_step() for _ in range(30)]
        val = run.evaluate(full=True)
    np.savez(f"{out}{dist.rank()}.npz", losses=np.array(losses), val=np.array(list(val.values())),
             **{"model/" + k: v for k, v in run.model.params.items()})
""")


def api_runs(tmp_path, text_file, kind, dtype, dropout=0.0, keyed="plain", n=2, tag="r"):
    """(one process, rank 0 of n ranks, rank 1 of n ranks) results of API_JOB as dicts of arrays."""
    script = tmp_path / "api_job.py"
    script.write_text(API_JOB)
    args = [str(script), kind, dtype, str(tmp_path / f"{tag}one"), str(dropout), keyed, text_file]
    ok(subprocess.run([sys.executable] + args, env=env(), capture_output=True, text=True, timeout=120))
    args[3] = str(tmp_path / f"{tag}two")
    ok(subprocess.run([_mpiexec(), "-n", str(n), sys.executable] + args, env=env(), capture_output=True, text=True,
                      timeout=120))

    def load(name):
        with np.load(tmp_path / name) as z:
            return {k: z[k] for k in z.files}

    return load(f"{tag}one0.npz"), load(f"{tag}two0.npz"), load(f"{tag}two1.npz")


@pytest.mark.parametrize("kind", ["charlm", "seq2seq"])
def test_two_ranks_reproduce_one_process_float64(tmp_path, text_file, kind):
    one, r0, r1 = api_runs(tmp_path, text_file, kind, "float64")
    for k in r0:  # every rank holds the same weights, bit for bit
        np.testing.assert_array_equal(r0[k], r1[k], err_msg=k)
    # Not bit for bit with one process: the kernels sum over the batch inside their GEMMs and the loss, and
    # the two halves' sums added after the allreduce are associated differently (see bench/hosts/amd-epyc/MPI.md).
    assert rel_diff(one, r0) < 1e-12


def test_three_ranks_with_unequal_shares(tmp_path, text_file):
    """Batch 8 on 3 ranks: shares of 3, 3 and 2 streams, weighted 3/8, 3/8 and 2/8."""
    one, r0, r1 = api_runs(tmp_path, text_file, "charlm", "float64", n=3)
    for k in r0:
        np.testing.assert_array_equal(r0[k], r1[k], err_msg=k)
    assert rel_diff(one, r0) < 1e-12


def test_dropout_masks_follow_the_stream_not_the_rank(tmp_path, text_file):
    one, r0, r1 = api_runs(tmp_path, text_file, "charlm", "float64", dropout=0.3, keyed="keyed")
    _, s0, _ = api_runs(tmp_path, text_file, "charlm", "float64", dropout=0.3, keyed="keyed", tag="s")
    for k in r0:
        np.testing.assert_array_equal(r0[k], r1[k], err_msg=k)
        np.testing.assert_array_equal(r0[k], s0[k], err_msg=k)  # reproducible for a rank count
    # one process drawing each stream's masks from its global index trains the same model as 2 ranks
    assert rel_diff(one, r0) < 1e-12
    plain, _, _ = api_runs(tmp_path, text_file, "charlm", "float64", dropout=0.3, keyed="plain", tag="p")
    assert rel_diff(plain, r0) > 1e-3  # the per-rank generators of a plain run would draw other masks


def test_rank_zero_alone_writes_and_resume_reads_on_rank_zero(tmp_path, text_file):
    """Rank 1 runs in another directory, as on another host: the relative --out exists on rank 0's side
    only, resume reads it there, and 15 + 15 steps give the 30-step weights bit for bit; one process
    can continue the 2-rank run."""
    home, away = tmp_path / "rank0", tmp_path / "rank1"
    home.mkdir()
    # a schedule over the run's length changes with --steps; dropout on, so the saved masks' state matters
    argv = with_flag(CHARLM, "--eval-every", "5") + ["--schedule", "constant", "--warmup", "0", "--dropout", "0.3",
                                                     "--text", text_file]
    ok(two(home, argv + ["--out", "straight"], other=away))
    assert sorted(os.listdir(home / "straight")) == ["best.npz", "checkpoint.npz", "curve.png", "metrics.jsonl",
                                                     "sample.txt"]
    assert os.listdir(away) == []
    halves = with_flag(argv, "--steps", "15")
    ok(two(home, halves + ["--out", "halves"], other=away))
    job = ok(two(home, argv + ["--out", "halves", "--resume"], other=away))
    assert job.stdout.count("resuming halves at step 15") == 1
    a, b = weights(home / "straight" / "checkpoint.npz"), weights(home / "halves" / "checkpoint.npz")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert os.listdir(away) == []
    # one process continues the 2-rank run: the carried state of all streams is in the checkpoint
    ok(single(with_flag(argv, "--steps", "35") + ["--out", "halves", "--resume"], home))
    assert rows(home / "halves")[-1]["step"] == 35


def test_seq2seq_resume_reads_on_rank_zero(tmp_path):
    home, away = tmp_path / "rank0", tmp_path / "rank1"
    home.mkdir()
    argv = SEQ2SEQ + ["--schedule", "constant", "--warmup", "0", "--layers", "2", "--dropout", "0.2"]
    ok(two(home, argv + ["--out", "straight"], other=away))
    ok(two(home, with_flag(argv, "--steps", "15") + ["--out", "halves"], other=away))
    ok(two(home, argv + ["--out", "halves", "--resume"], other=away))
    a, b = weights(home / "straight" / "checkpoint.npz"), weights(home / "halves" / "checkpoint.npz")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert os.listdir(away) == []


def test_minutes_end_every_rank_at_the_same_step(tmp_path, text_file):
    argv = with_flag(CHARLM, "--steps") + ["--minutes", "0.03", "--text", text_file]
    ok(two(tmp_path, argv + ["--out", "timed"], timeout=90))  # ranks stopping apart would leave one waiting
    assert rows(tmp_path / "timed")[-1]["step"] >= 1


def test_a_rank_that_fails_ends_the_job_with_its_message(tmp_path, text_file):
    home, away = tmp_path / "rank0", tmp_path / "rank1"
    home.mkdir()
    away.mkdir()
    (home / "t.txt").write_text(open(text_file).read())  # rank 1 finds no t.txt
    job = two(home, CHARLM + ["--text", "t.txt", "--out", "o"], other=away, timeout=60)
    assert job.returncode != 0
    assert "rnnkit train-charlm (rank 1/2): error: text file not found: t.txt" in job.stderr
    assert not (home / "o").exists()


def test_ranks_that_disagree_stop_before_training(tmp_path, text_file):
    argv = CHARLM + ["--text", text_file, "--out", "o"]
    job = ranks((tmp_path, argv), (tmp_path, argv + ["--hidden", "33"]), timeout=60)
    assert job.returncode == 1
    lines = [line for line in job.stderr.splitlines() if "error" in line]
    assert lines == ["rnnkit train-charlm: error: ranks disagree on the run in 'model', 'settings': rank(s) [1] "
                     "differ from rank 0 (every rank must run the same rnnkit version with the same arguments "
                     "and data)"], job.stderr


def test_a_batch_smaller_than_the_ranks_is_refused(tmp_path, text_file):
    argv = with_flag(CHARLM, "--batch", "1") + ["--text", text_file, "--out", "o"]
    job = two(tmp_path, argv, timeout=60)
    assert job.returncode != 0
    assert "--batch 1 is smaller than the 2 ranks of this job" in job.stderr


def test_threads_default_to_the_cores_divided_among_the_ranks(tmp_path):
    script = tmp_path / "threads.py"
    script.write_text("import rnnkit\nfrom rnnkit import distributed as dist\nfrom rnnkit.data_parallel import "
                      "set_threads\ndist.init()\nset_threads(None)\n"
                      "open(f'threads{dist.rank()}', 'w').write(str(rnnkit.get_num_threads()))\n")
    e = env()
    del e["OMP_NUM_THREADS"]
    ok(subprocess.run([_mpiexec(), "-n", "2", sys.executable, str(script)], env=e, cwd=tmp_path,
                      capture_output=True, text=True, timeout=60))
    machine = os.cpu_count() or 1
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else machine
    want = allowed if allowed < machine else max(1, machine // 2)  # a launcher's binding is the rank's share
    assert [int((tmp_path / f"threads{r}").read_text()) for r in range(2)] == [want, want]


def test_under_mpiexec_without_mpi4py_the_command_says_to_install_the_extra(tmp_path, text_file):
    blocked = tmp_path / "blocked" / "mpi4py"
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text("raise ImportError('mpi4py blocked for this test')\n")
    e = env()
    e.update(PYTHONPATH=f"{blocked.parent}{os.pathsep}{PYTHON_DIR}", PMI_RANK="0", PMI_SIZE="2")
    job = subprocess.run([sys.executable, "-m", "rnnkit.cli"] + CHARLM + ["--text", text_file, "--out", "o"], env=e,
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert job.returncode == 1
    assert job.stderr.strip() == ("rnnkit train-charlm: error: this process was launched by mpiexec but mpi4py is "
                                  "not installed: install MPI support with  pip install 'rnnkit[mpi]'")
    assert not (tmp_path / "o").exists()


# ---- the pieces, in one process ------------------------------------------------------------------------

def test_shares_cover_the_items_in_order():
    from rnnkit.data_parallel import shares

    assert shares(10, 3) == [(0, 4), (4, 7), (7, 10)]
    assert shares(2, 4) == [(0, 1), (1, 2), (2, 2), (2, 2)]
    for total in range(0, 20):
        for parts in range(1, 6):
            bounds = shares(total, parts)
            assert bounds[0][0] == 0 and bounds[-1][1] == total
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
            assert max(b - a for a, b in bounds) - min(b - a for a, b in bounds) <= 1


@pytest.mark.parametrize("pairs", [5, 10, 37, 200])
def test_validation_shares_sum_to_the_whole(pairs):
    """Each rank scores its share of the streams; the shares' sums are the whole text's, with padding
    (37 pairs as 8 streams of 5: 3 pad the 8th) and shares of padding only (10 pairs as 8 streams of 2:
    the last 3 streams are padding)."""
    from rnnkit.charlm.model import CharLM
    from rnnkit.charlm.vocab import Vocab
    from rnnkit.data_parallel import shares

    text = "".join(random.Random(pairs).choice("abcd \n") for _ in range(pairs + 1))
    model = CharLM(Vocab.from_text(text), "lstm", 2, 8, 4, dtype=np.float64)
    ids = model.vocab.encode(text)
    total, count = model.nll_sum(ids, batch=8, seq_len=3)
    for ranks in (2, 3, 8):
        streams = min(8, len(ids) - 1)
        parts = [model.nll_sum(ids, 8, 3, streams=slice(a, b)) for a, b in shares(streams, ranks)]
        assert sum(c for _, c in parts) == count
        assert abs(sum(t for t, _ in parts) - total) <= 1e-12 * total


def test_stream_keyed_draws_depend_on_the_stream_not_the_split():
    from rnnkit.stream_dropout import StreamKeyedRandom, generator_state, keyed_from, restore_generator

    whole = StreamKeyedRandom(7, 0)
    halves = StreamKeyedRandom(7, 0), StreamKeyedRandom(7, 3)
    for _ in range(3):  # successive draws differ, and match split or not
        a = whole.random((4, 6, 5))
        np.testing.assert_array_equal(a[:, :3], halves[0].random((4, 3, 5)))
        np.testing.assert_array_equal(a[:, 3:], halves[1].random((4, 3, 5)))
    assert not np.array_equal(a[:, 0], a[:, 1])
    state = generator_state(whole)
    assert state == {"kind": "stream-keyed-philox", "key": 7, "draws": 3}
    again = restore_generator(np.random.default_rng(), state, first_stream=2)
    np.testing.assert_array_equal(again.random((2, 1, 3)), whole.random((2, 3, 3))[:, 2:])
    plain = np.random.default_rng(5)
    before = generator_state(plain)
    assert keyed_from(plain, 0).key == keyed_from(np.random.default_rng(5), 4).key  # from the state alone
    assert generator_state(plain) == before
