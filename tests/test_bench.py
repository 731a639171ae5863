"""The benchmark's command line, run in-process on tiny cases: its JSON, its correctness check, its
report files and --compare. Nothing here asserts a time: the machine may be busy."""
from __future__ import annotations

import copy
import json
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


def test_timing_interleaves_and_rotates():
    calls = []
    impls = [Timed(n, (lambda n=n: calls.append(n)), repeats=r, warmup=0) for n, r in (("a", 3), ("b", 3), ("c", 1))]
    times = time_interleaved(impls)
    assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3, "c": 1}
    assert calls == ["a", "b", "c", "b", "a", "a", "b"]
