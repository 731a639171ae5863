"""rnnkit.distributed: single-process behaviour without MPI (in this process, mpi4py blocked), and real
MPI jobs of 2 ranks launched with mpiexec in a subprocess with a timeout."""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from rnnkit import distributed as dist

import rnnkit  # noqa: E402

# The directory rnnkit is imported from (site-packages when installed, python/ in a built checkout), so the
# ranks run the same rnnkit as the tests.
PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(rnnkit.__file__)))
LAUNCHER_VARS = [v for pair in dist._LAUNCHER_VARS for v in pair if v]


@pytest.fixture
def fresh(monkeypatch):
    """A fresh, uninitialised distributed state with no launcher variables and mpi4py unimportable."""
    monkeypatch.setattr(dist, "_state", dist._State())
    for var in LAUNCHER_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    monkeypatch.setitem(sys.modules, "mpi4py.MPI", None)
    return dist


def test_single_process_is_a_world_of_one(fresh):
    fresh.init()
    fresh.init()
    assert fresh.is_initialized() and not fresh.uses_mpi()
    assert (fresh.rank(), fresh.world_size(), fresh.is_main()) == (0, 1, True)
    assert (fresh.local_rank(), fresh.local_size()) == (0, 1)
    assert 1 <= fresh.default_threads() <= (os.cpu_count() or 1)
    fresh.barrier()
    fresh.check_same({"hidden": 3}, "model configuration")


def test_single_process_collectives_leave_values_and_dtypes(fresh):
    rng = np.random.default_rng(0)
    grads = {"w": rng.standard_normal((3, 4)).astype(np.float32), "b": rng.standard_normal(5)}
    before = {k: v.copy() for k, v in grads.items()}
    for op in ("sum", "mean"):
        assert fresh.allreduce_(grads, op=op) is grads
        for k in grads:
            assert grads[k].dtype == before[k].dtype
            np.testing.assert_array_equal(grads[k], before[k])
    as_list = [grads["w"], np.arange(4)]
    assert fresh.broadcast_(as_list) is as_list
    np.testing.assert_array_equal(as_list[1], np.arange(4))


def test_bad_arguments_raise_clear_errors(fresh):
    with pytest.raises(ValueError, match="op must be"):
        fresh.allreduce_([np.zeros(2)], op="max")
    with pytest.raises(TypeError, match="dict of name"):
        fresh.allreduce_(np.zeros(2))
    with pytest.raises(TypeError, match=r"arrays\[1\] is a list"):
        fresh.allreduce_([np.zeros(2), [1.0]])
    with pytest.raises(TypeError, match="dtype float16"):
        fresh.allreduce_({"h": np.zeros(2, np.float16)})
    with pytest.raises(TypeError, match="needs floating"):
        fresh.allreduce_([np.zeros(2, np.int64)], op="mean")
    frozen = np.zeros(2)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        fresh.allreduce_({"w": frozen})
    with pytest.raises(ValueError, match="root must be"):
        fresh.broadcast_([np.zeros(2)], root=1)


def test_without_mpi_mpi4py_is_not_imported():
    code = ("import sys; import rnnkit.distributed as d; d.init(); d.allreduce_([__import__('numpy').ones(2)]);"
            "d.check_same({'a': 1}, 'x'); assert 'mpi4py' not in sys.modules, 'mpi4py imported'; print('ok')")
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARS}
    env["PYTHONPATH"] = PYTHON_DIR
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_under_mpiexec_without_mpi4py_says_to_install_the_extra(fresh, monkeypatch):
    monkeypatch.setenv("PMI_RANK", "0")
    monkeypatch.setenv("PMI_SIZE", "2")
    with pytest.raises(RuntimeError, match=r"rnnkit\[mpi\]"):
        fresh.init()


def test_under_mpiexec_with_one_rank_without_mpi4py_runs_alone(fresh, monkeypatch):
    monkeypatch.setenv("PMI_RANK", "0")
    monkeypatch.setenv("PMI_SIZE", "1")
    fresh.init()
    assert (fresh.rank(), fresh.world_size()) == (0, 1)


def test_fingerprint_ignores_dict_order_and_sees_array_contents():
    assert dist._fingerprint({"a": 1, "b": [2, 3]}) == dist._fingerprint({"b": [2, 3], "a": 1})
    assert dist._fingerprint(np.arange(3)) != dist._fingerprint(np.arange(3) + 1)
    assert dist._fingerprint(np.zeros(2, np.float32)) != dist._fingerprint(np.zeros(2, np.float64))


# ---- real MPI jobs -------------------------------------------------------------------------------

def _mpiexec():
    if importlib.util.find_spec("mpi4py") is None:
        pytest.skip("mpi4py is not installed (pip install '.[mpi]'; the test extra installs it)")
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    found = here if os.path.exists(here) else shutil.which("mpiexec")
    if found is None:
        pytest.skip("mpiexec not found (the mpich wheel puts it in the environment's bin/)")
    return found


def run_job(tmp_path, body, n=2, timeout=120):
    """Run ``body`` (Python, with ``dist`` and ``np`` imported and init() done) on ``n`` ranks; the body
    calls ``report(line)`` to leave a line in its rank's file (mpiexec's merged stdout interleaves)."""
    script = tmp_path / "job.py"
    script.write_text("import numpy as np\nfrom rnnkit import distributed as dist\ndist.init()\n"
                      "def report(line):\n"
                      "    with open(f'report{dist.rank()}.txt', 'a') as f:\n"
                      "        f.write(f'{line}\\n')\n"
                      + textwrap.dedent(body))
    env = dict(os.environ, PYTHONPATH=PYTHON_DIR, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return subprocess.run([_mpiexec(), "-n", str(n), sys.executable, str(script)], env=env,
                          capture_output=True, text=True, timeout=timeout, cwd=tmp_path)


def reports(tmp_path, n=2):
    """The lines each rank reported, by rank."""
    return [(tmp_path / f"report{r}.txt").read_text().splitlines()
            if (tmp_path / f"report{r}.txt").exists() else [] for r in range(n)]


def test_mpi_collectives_sum_mean_broadcast(tmp_path):
    out = run_job(tmp_path, """
        r, n = dist.rank(), dist.world_size()
        assert n == 2 and dist.uses_mpi() and dist.is_main() == (r == 0)

        def values(rank, dtype, shape, seed):
            return np.random.default_rng(seed + 100 * rank).standard_normal(shape).astype(dtype)

        specs = {"w32": (np.float32, (3, 5), 1), "b32": (np.float32, (5,), 2),
                 "w64": (np.float64, (4, 2), 3), "b64": (np.float64, (7,), 4)}
        for op in ("sum", "mean"):
            for container in ("dict", "list"):
                mine = {k: values(r, *s) for k, s in specs.items()}
                arrays = mine if container == "dict" else list(mine.values())
                originals = list(mine.values())
                assert dist.allreduce_(arrays, op=op) is arrays
                for k, s in specs.items():
                    expect = values(0, *s) + values(1, *s)
                    if op == "mean":
                        expect /= s[0](2)
                    got = mine[k]
                    assert got.dtype == s[0], (k, got.dtype)
                    np.testing.assert_array_equal(got, expect, err_msg=f"{op} {container} {k}")
                assert all(a is b for a, b in zip(mine.values(), originals))

        counts = [np.full(3, r + 1, np.int64)]
        dist.allreduce_(counts)
        np.testing.assert_array_equal(counts[0], [3, 3, 3])

        base = np.zeros((4, 4), np.float64) + r      # a strided view is reduced in place too
        dist.allreduce_({"col": base[:, 1]})
        np.testing.assert_array_equal(base[:, 1], 1.0)
        np.testing.assert_array_equal(base[:, 0], r)

        for root in (0, 1):
            for container in ("dict", "list"):
                mine = {k: values(r, *s) for k, s in specs.items()}
                arrays = mine if container == "dict" else list(mine.values())
                dist.broadcast_(arrays, root=root)
                for k, s in specs.items():
                    assert mine[k].dtype == s[0]
                    np.testing.assert_array_equal(mine[k], values(root, *s))
        dist.barrier()
        dist.check_same({"hidden": 8, "vocab": list("abc")}, "model configuration")
        report(f"collectives ok on rank {r}")
    """)
    assert out.returncode == 0, out.stdout + out.stderr
    assert reports(tmp_path) == [["collectives ok on rank 0"], ["collectives ok on rank 1"]]


def test_mpi_dict_key_order_does_not_matter(tmp_path):
    out = run_job(tmp_path, """
        r = dist.rank()
        names = ["a", "b"] if r == 0 else ["b", "a"]
        grads = {k: np.full(2, (r + 1) * (1 if k == "a" else 10), np.float32) for k in names}
        dist.allreduce_(grads)
        np.testing.assert_array_equal(grads["a"], 3.0)
        np.testing.assert_array_equal(grads["b"], 30.0)
        report("ok")
    """)
    assert out.returncode == 0, out.stdout + out.stderr
    assert reports(tmp_path) == [["ok"], ["ok"]]


def test_mpi_local_ranks_share_the_cores(tmp_path):
    out = run_job(tmp_path, """
        report(f"{dist.local_rank()} {dist.local_size()} {dist.default_threads()}")
    """)
    assert out.returncode == 0, out.stdout + out.stderr
    rows = [tuple(map(int, lines[0].split())) for lines in reports(tmp_path)]
    cores = os.cpu_count() or 1
    assert [row[:2] for row in rows] == [(0, 2), (1, 2)]
    assert all(row[2] == max(1, cores // 2) for row in rows), rows


@pytest.mark.parametrize("error", ["ValueError('boom on rank one')", "KeyboardInterrupt()"])
def test_mpi_a_raising_rank_ends_the_whole_job(tmp_path, error):
    out = run_job(tmp_path, f"""
        if dist.rank() == 1:
            raise {error}
        dist.barrier()                  # rank 0 would wait here forever without the abort
        report("rank 0 got past the barrier")
    """, timeout=60)
    assert out.returncode != 0
    assert reports(tmp_path) == [[], []]
    assert "[rnnkit rank 1/2]" in out.stderr
    assert error.split("(")[0] in out.stderr
    if error.startswith("ValueError"):
        assert "boom on rank one" in out.stderr


def test_mpi_configuration_mismatch_names_keys_and_ranks(tmp_path):
    out = run_job(tmp_path, """
        r = dist.rank()
        dist.check_same({"hidden": 64, "layers": 2, "vocab": "abc"}, "model configuration")
        try:
            dist.check_same({"hidden": 64 + r, "layers": 2, "vocab": "abc" if r == 0 else "abd"},
                            "model configuration")
        except RuntimeError as exc:
            report(f"rank {r}: {exc}")
        try:
            dist.check_same(np.arange(3) + r, "vocabulary")
        except RuntimeError as exc:
            report(f"rank {r}: {exc}")
    """)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = [line for rank_lines in reports(tmp_path) for line in rank_lines]
    assert len(lines) == 4, lines
    for line in lines:
        assert "rank(s) [1] differ from rank 0" in line
    config = [line for line in lines if "model configuration" in line]
    assert len(config) == 2 and all("in 'hidden', 'vocab':" in line for line in config), config
    assert sum("ranks disagree on vocabulary:" in line for line in lines) == 2


def test_mpi_ctrl_c_on_mpiexec_ends_the_job(tmp_path):
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent("""
        import time
        from rnnkit import distributed as dist
        dist.init()
        open(f"ready{dist.rank()}", "w").close()
        if dist.rank() == 1:
            time.sleep(120)
        dist.barrier()
    """))
    env = dict(os.environ, PYTHONPATH=PYTHON_DIR, OMP_NUM_THREADS="1")
    job = subprocess.Popen([_mpiexec(), "-n", "2", sys.executable, str(script)], env=env, cwd=tmp_path,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not all((tmp_path / f"ready{r}").exists() for r in range(2)):
            assert time.monotonic() < deadline and job.poll() is None, "the job did not start"
            time.sleep(0.1)
        job.send_signal(signal.SIGINT)
        _, err = job.communicate(timeout=60)
    finally:
        if job.poll() is None:
            job.kill()
            job.communicate()
    assert job.returncode != 0
    assert re.search(r"\[rnnkit rank [01]/2\] KeyboardInterrupt", err), err
