"""The benchmark's command line, run in-process on tiny cases: its JSON, its correctness check, its
report files and --compare. Nothing here asserts a time: the machine may be busy."""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("threadpoolctl")
from rnnkit import cli as top_cli  # noqa: E402
from rnnkit.bench import cli as bench_cli  # noqa: E402
from rnnkit.bench.compare import compare_docs  # noqa: E402
from rnnkit.bench.grid import build_cases  # noqa: E402
from rnnkit.bench.timing import Timed, time_interleaved  # noqa: E402

TINY = ["--cell", "lstm", "--batch", "2", "--hidden", "16", "--seq-len", "4", "--repeats", "1",
        "--peak-size", "128", "--no-progress"]


@pytest.fixture(scope="module")
def tiny_json(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "tiny.json"
    assert bench_cli.main(TINY + ["--json", str(path)]) == 0
    return json.loads(path.read_text())


def test_json_has_every_figure(tiny_json):
    doc = tiny_json
    assert doc["command"].startswith("rnnkit bench --cell lstm")
    m = doc["machine"]
    for key in ("cpu_model", "logical_cpus", "versions", "git", "threadpools", "python"):
        assert key in m
    assert m["versions"]["rnnkit"] and m["versions"]["numpy"]
    kernels = doc["gemm_kernels"]
    (ours,) = [e for e in kernels["libraries"] if e["owner"] == "rnnkit"]
    assert ours["internal_api"] == "openblas" and ours["version"] and ours["architecture"]
    assert ours["core_type_choice"] and kernels["cpu_isa"] in ("sse", "avx2", "avx512")
    (peak,) = doc["peaks"].values()
    assert peak["gflops"] > 0 and "scipy-openblas32" in peak["blas"]["library"]
    assert [(r["cell"], r["mode"]) for r in doc["cases"]] == [("lstm", "inference"), ("lstm", "training")]
    for r in doc["cases"]:
        assert (r["B"], r["H"], r["T"], r["L"], r["D"]) == (2, 16, 4, 1, 1)
        assert r["status"] == "ok", r["notes"]
        assert r["flops"] == 2 * 2 * 4 * (16 + 16) * 4 * 16 * (3 if r["mode"] == "training" else 1)
        mine = r["impls"]["rnnkit"]
        assert mine["status"] == "ok" and mine["check_error"] <= 1e-4
        assert mine["ms"] > 0 and mine["gflops"] > 0 and mine["peak_fraction"] > 0 and mine["repeats"] == 1
        assert r["impls"]["reference"]["ms"] > 0 and r["speedup_vs_reference"] > 0
        if "torch" in r["impls"]:
            assert r["impls"]["torch"]["check_error"] <= 1e-4 and r["speedup_vs_torch"] > 0
        assert r["traced_peak_mib"] > 0
        assert (r["workspace_mib"] > 0) if r["mode"] == "training" else r["workspace_mib"] is None


def test_variable_length_bidirectional_check_and_reports(tmp_path):
    pytest.importorskip("matplotlib")
    out = {k: tmp_path / f"r.{k}" for k in ("json", "png", "md")}
    code = bench_cli.main(["--cell", "gru", "--group", "variable-length", "--layers", "2", "--seq-len", "4",
                           "--batch", "32", "--repeats", "1", "--peak-size", "128", "--no-progress",
                           "--json", str(out["json"]), "--plot", str(out["png"]), "--markdown", str(out["md"])])
    assert code == 0
    doc = json.loads(out["json"].read_text())
    assert [(r["varlen"], r["D"], r["L"], r["status"]) for r in doc["cases"]] == [(True, 2, 2, "ok")] * 2
    assert out["png"].read_bytes()[:4] == b"\x89PNG"
    md = out["md"].read_text()
    assert doc["command"] in md and "| gru | training |" in md
    assert "GEMM for rnnkit's kernels: openblas" in md and "time(rnnkit)/time(torch)" in md


def test_from_presents_a_saved_run_without_running_it(tiny_json, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    saved, png, md = tmp_path / "saved.json", tmp_path / "again.png", tmp_path / "again.md"
    saved.write_text(json.dumps(tiny_json))
    assert bench_cli.main(["--from", str(saved), "--plot", str(png), "--markdown", str(md)]) == 0
    out = capsys.readouterr().out
    assert "lstm  training" in out and "time(rnnkit)/time(torch)" in out
    assert png.read_bytes()[:4] == b"\x89PNG"
    text = md.read_text()
    assert tiny_json["command"] in text and f"drawn from its JSON by `rnnkit bench --from {saved}" in text


def test_compare_prints_the_change(tiny_json, tmp_path, capsys):
    slower = copy.deepcopy(tiny_json)
    for r in slower["cases"]:
        r["impls"]["rnnkit"]["ms"] *= 2
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(tiny_json))
    b.write_text(json.dumps(slower))
    assert bench_cli.main(["--compare", str(a), str(b)]) == 0
    text = capsys.readouterr().out
    assert "+100.0%" in text and "lstm-training-B2-T4-I16-H16-L1" in text
    assert "geometric mean 2.000" in compare_docs(tiny_json, slower)


def test_help_exits_zero(capsys):
    with pytest.raises(SystemExit) as exc:
        top_cli.main(["bench", "--help"])
    assert exc.value.code == 0
    assert "--quick" in capsys.readouterr().out
    assert top_cli.main(["--help"]) == 0 and "bench" in capsys.readouterr().out
    assert top_cli.main(["no-such-command"]) == 2


def test_python_dash_m_help():
    res = subprocess.run([sys.executable, "-m", "rnnkit.bench", "--help"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "python -m rnnkit.bench" in res.stdout


def test_grid_covers_the_regimes_and_selectors_narrow_it():
    full = build_cases()
    assert {c.cell for c in full} == {"rnn_tanh", "lstm", "gru"}
    assert {c.mode for c in full} == {"inference", "training"}
    sizes = {c.size for c in full}
    assert any(s.B == 1 for s in sizes) and any(4 <= s.B <= 16 for s in sizes)
    assert any(s.B >= 64 and s.H == 1024 for s in sizes)
    assert any(s.L > 1 for s in sizes) and any(s.bidirectional for s in sizes) and any(s.varlen for s in sizes)
    assert len({c.id for c in full}) == len(full)
    narrow = build_cases(cells=["gru"], modes=["training"], batch=[64])
    assert narrow and all(c.cell == "gru" and c.mode == "training" and c.size.B == 64 for c in narrow)
    (custom,) = build_cases(cells=["lstm"], modes=["inference"], batch=[3], hidden=[5], seq_len=7)
    assert (custom.size.B, custom.size.H, custom.size.T) == (3, 5, 7)


def test_full_grid_has_the_speed_issues_cases_and_a_batch_by_hidden_grid():
    full = build_cases()
    have = {(c.cell, c.mode, c.size.B, c.size.T, c.size.H, c.size.L, c.size.bidirectional, c.size.varlen)
            for c in full}
    for cell in ("rnn_tanh", "lstm", "gru"):
        for mode in ("inference", "training"):
            for B in (1, 16, 64, 128):
                for H in (128, 256, 512, 1024):
                    assert any(h[:3] == (cell, mode, B) and h[4] == H and h[5:] == (1, False, False) for h in have)
            assert (cell, mode, 64, 100, 512, 2, False, False) in have  # the char-LM recipe's 2x512 stack
            assert any(h[:2] == (cell, mode) and h[5] == 2 and h[6] for h in have)  # bidirectional
    # the cases issue 18 names: LSTM training B=128 T=32 H=128, B=64 H=512, B=16 H=1024
    assert ("lstm", "training", 128, 32, 128, 1, False, False) in have
    assert any(h[:3] == ("lstm", "training", 64) and h[4] == 512 for h in have)
    assert any(h[:3] == ("lstm", "training", 16) and h[4] == 1024 for h in have)
    quick = build_cases(quick=True)
    assert len(quick) < len(full) / 3 and all(c.size.T <= 20 for c in quick)


def _fake_case(cell, mode, B, H, L=1, D=1, varlen=False, up=1.5, status="ok"):
    return {"id": f"{cell}-{mode}-B{B}-H{H}-L{L}-D{D}", "cell": cell, "mode": mode, "B": B, "T": 10, "I": H, "H": H,
            "L": L, "D": D, "varlen": varlen, "threads": 2, "status": status, "speedup_vs_torch": up,
            "speedup_vs_reference": 2 * up, "impls": {}}


def test_plot_puts_single_layers_on_the_batch_by_hidden_grid_and_the_rest_beside(tmp_path):
    pytest.importorskip("matplotlib")
    from rnnkit.bench import plot

    cases = [_fake_case(c, m, B, H, up=0.5 + B / 64 + H / 1024) for c in ("lstm", "gru") for m in ("inference", "training")
             for B in (1, 64) for H in (128, 512)]
    cases += [_fake_case("lstm", "training", 32, 256, L=2, D=2, varlen=True, status="FAILED")]
    doc = {"cases": cases, "machine": {"cpu_model": "test CPU"}, "created": "2026-12-06T00:00:00"}
    rows, cells, grid, other = plot.layout(doc)
    assert rows == [("inference", 2), ("training", 2)] and cells == ["lstm", "gru"]
    assert set(grid[("training", 2, "gru")]) == {(1, 128), (1, 512), (64, 128), (64, 512)}
    assert list(other[("training", 2)]) == [("B32 T10 H256 L2 bidir var-len", "lstm")]
    path = tmp_path / "maps.png"
    plot.write_plot(doc, str(path))
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_gemm_kernels_below_the_cpu_are_warned_about():
    from rnnkit import _blas_load
    from rnnkit.bench import gemm_kernels

    assert gemm_kernels.core_isa("SkylakeX") == "avx512" and gemm_kernels.core_isa("Haswell") == "avx2"
    assert gemm_kernels.core_isa("Nehalem") == "sse" and gemm_kernels.core_isa("neoversen1") is None
    ours = os.path.join(_blas_load.library_dir(), "libscipy_openblas.so")
    numpy_copy = "/x/site-packages/numpy.libs/libscipy_openblas64_-1.so"
    pools = [{"user_api": "blas", "internal_api": "openblas", "version": "0.3", "architecture": arch,
              "num_threads": 2, "filepath": path} for arch, path in (("Haswell", ours), ("SkylakeX", numpy_copy))]
    info = gemm_kernels.describe(pools, cpu="avx512")
    assert [(e["owner"], e["below_cpu"]) for e in info["libraries"]] == [("rnnkit", True), ("numpy", False)]
    (warning,) = info["warnings"]
    assert warning.startswith("warning: rnnkit's kernels ran on openblas 0.3 with Haswell kernels (AVX2)")
    assert gemm_kernels.describe(pools, cpu="avx2")["warnings"] == []
    text = "\n".join(gemm_kernels.lines(info))
    assert "GEMM for rnnkit's kernels: openblas 0.3, core type Haswell (AVX2)" in text
    assert "GEMM for the NumPy reference: openblas 0.3, core type SkylakeX (AVX512), threads 2" in text


def test_timing_interleaves_and_rotates():
    calls = []
    impls = [Timed(n, (lambda n=n: calls.append(n)), repeats=r, warmup=0) for n, r in (("a", 3), ("b", 3), ("c", 1))]
    times = time_interleaved(impls)
    assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3, "c": 1}
    assert calls == ["a", "b", "c", "b", "a", "a", "b"]
