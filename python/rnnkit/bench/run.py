"""Run the benchmark: for every thread count, measure the peak, then for every case check each
implementation against the reference and time them in turns."""

from __future__ import annotations

import time
import traceback
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

from threadpoolctl import threadpool_info

from . import gemm_kernels
from .grid import Case
from .impls import RnnkitImpl, TorchImpl, compare, make_layer, make_problem, torch_available
from .machine import busy_warning, cpu_load, machine_info, threads as thread_settings
from .peak import measure_peak
from .timing import Timed, median, time_interleaved

IMPLS = ("rnnkit", "reference", "torch")


@dataclass
class Settings:
    """How to run (see ``rnnkit bench --help`` for each)."""

    impls: Sequence[str] = IMPLS
    threads: Sequence[int] = (1,)
    repeats: int = 7
    warmup: int = 1
    time_budget: float = 10.0  # seconds of timed calls per implementation and case, at most about
    ref_budget: float = 5.0  # the reference is not timed where one call would take longer
    check_seq_len: int = 16
    rtol: float = 1e-4
    peak_size: int = 2048
    peak_repeats: int = 3
    min_repeats: int = 3  # even over the time budget; --quick takes 1 so that a busy machine stays quick
    max_seconds: Optional[float] = None  # cases not started by then are left out and listed
    quick: bool = False


def _repeats_for(seconds_per_call: float, budget: float, repeats: int, minimum: int = 3) -> int:
    """As many repeats as fit the budget, at least ``minimum`` (or ``repeats`` if smaller)."""
    fit = int(budget / max(seconds_per_call, 1e-9))
    return max(min(minimum, repeats), min(repeats, fit))


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]


def run_case(
    case: Case, s: Settings, peak_gflops: float, threads: int, tick: Callable[[], None] = lambda: None
) -> Dict:
    """Check and time one case on every implementation; returns its result record (see report.py)."""
    result = dict(case.to_dict(), threads=threads, flops=case.flops(), status="ok", notes=[])
    impls: Dict[str, Dict] = {name: {"status": "ok"} for name in s.impls}
    result["impls"] = impls
    state_dict = make_layer(case).state_dict()
    objects: Dict[str, Any] = {}
    for name in s.impls:
        try:
            if name == "rnnkit":
                objects[name] = RnnkitImpl(name, case, state_dict)
            elif name == "reference":
                import rnnkit.reference

                objects[name] = RnnkitImpl(name, case, state_dict, backend=rnnkit.reference)
            elif name == "torch":
                objects[name] = TorchImpl(case, state_dict)
        except Exception as exc:  # an implementation that cannot even be built is reported, not fatal
            impls[name].update(status="error", note=_error(exc))

    # 1. Correctness on the case itself, or on its first check_seq_len steps for long ones (the
    #    reference is slow); the reference is the oracle, so it is always run here, timed or not.
    check_T = min(case.size.T, s.check_seq_len)
    result["check_T"] = check_T
    check = make_problem(case, T=check_T, seed=1)
    import rnnkit.reference

    oracle = (
        objects["reference"]
        if "reference" in objects
        else RnnkitImpl("reference", case, state_dict, backend=rnnkit.reference)
    )
    start = time.perf_counter()
    ref_out = oracle.outputs(check)
    ref_check_seconds = time.perf_counter() - start
    tick()
    for name, impl in objects.items():
        if name == "reference":
            impls[name].update(check_error=0.0, check_note="oracle")
            continue
        try:
            err, where = compare(impl.outputs(check), ref_out)
        except Exception as exc:
            impls[name].update(status="error", note=_error(exc))
            continue
        finally:
            tick()
        impls[name].update(check_error=err, check_worst=where)
        if not err <= s.rtol:
            impls[name]["status"] = "failed"
            result["notes"].append(
                f"{name} disagrees with the reference: error {err:.3g} in {where} (tolerance {s.rtol:g}, T={check_T})"
            )

    # 2. Timing, in turns. The reference's cost is known from the check (linear in T); rnnkit's and
    #    torch's from their first warm-up call, which sets how many repeats fit the time budget.
    problem = make_problem(case, seed=2)
    timed: List[Timed] = []
    for name, impl in objects.items():
        if impls[name]["status"] == "error":
            continue
        try:
            setup, call = impl.bind(problem)
            if name == "reference":
                estimate = ref_check_seconds * case.size.T / check_T
                if estimate > s.ref_budget:  # one slow call may be a hiccup of a shared machine: retry once
                    start = time.perf_counter()
                    oracle.outputs(check)
                    estimate = min(estimate, (time.perf_counter() - start) * case.size.T / check_T)
                if estimate > s.ref_budget:
                    impls[name].update(
                        status="skipped",
                        note=f"not timed: one call takes about {estimate:.1f} s (> --ref-budget {s.ref_budget:g} s)",
                    )
                    continue
                # NumPy code has nothing to warm up beyond what the check already did.
                timed.append(
                    Timed(name, call, setup, _repeats_for(estimate, s.time_budget, s.repeats, s.min_repeats), 0)
                )
                continue
            if setup:
                setup()
            start = time.perf_counter()
            call()  # first call: also the warm-up's first call, and the estimate for the repeats
            first = time.perf_counter() - start
            tick()
            timed.append(
                Timed(
                    name,
                    call,
                    setup,
                    _repeats_for(first, s.time_budget, s.repeats, s.min_repeats),
                    max(0, s.warmup - 1),
                )
            )
        except Exception as exc:
            impls[name].update(status="error", note=_error(exc))
    try:
        times = time_interleaved(timed, on_call=tick)
    except Exception as exc:  # which implementation raised is in the traceback's message
        result["notes"].append(f"timing failed: {_error(exc)}")
        traceback.print_exc()
        times = {}
    for name, seconds in times.items():
        if not seconds:
            continue
        ms = median(seconds) * 1e3
        gflops = case.flops() / (ms * 1e-3) / 1e9
        impls[name].update(
            ms=ms,
            ms_min=min(seconds) * 1e3,
            ms_all=[t * 1e3 for t in seconds],
            repeats=len(seconds),
            gflops=gflops,
            peak_fraction=gflops / peak_gflops if peak_gflops else None,
        )

    # 3. Speed-ups over the others, and rnnkit's memory (an extra untimed call under tracemalloc).
    mine = impls.get("rnnkit", {}).get("ms")
    for other in ("reference", "torch"):
        theirs = impls.get(other, {}).get("ms")
        result[f"speedup_vs_{other}"] = theirs / mine if mine and theirs else None
    if "rnnkit" in objects and impls["rnnkit"]["status"] != "error":
        try:
            result.update(objects["rnnkit"].memory(problem))
        except Exception as exc:
            result["notes"].append(f"memory measurement failed: {_error(exc)}")
    for name, r in impls.items():
        if r["status"] in ("failed", "error"):
            result["status"] = "FAILED"
        if r.get("note"):
            result["notes"].append(f"{name}: {r['note']}")
    return result


def calls_per_case(s: Settings) -> int:
    """Progress-bar units per case: one per check call plus one per timed or warm-up call (an upper
    bound; the bar is closed at the end whatever the count)."""
    n = len(s.impls)
    return 1 + n + n * (s.repeats + max(1, s.warmup))


def run_bench(cases: Sequence[Case], s: Settings, progress=None, log: Callable[[str], None] = print) -> Dict:
    """Run every case at every thread count; returns the whole result document (written by --json).

    progress: an object with update(n) and set_postfix_str(text) (a tqdm bar), or None.
    """
    impls = [i for i in s.impls if i != "torch" or torch_available()]
    if len(impls) != len(s.impls):
        log("torch is not importable: timing rnnkit and the reference only")
    s = Settings(**{**asdict(s), "impls": tuple(impls)})
    if "torch" in impls:
        import torch  # noqa: F401  imported before the thread settings, so that they reach it

    doc: Dict[str, Any] = {
        "schema": 1,
        "settings": asdict(s),
        "machine": machine_info(),
        "peaks": {},
        "cases": [],
        "not_run": [],
    }
    start = time.monotonic()
    warning = busy_warning(doc["machine"]["load_at_start"], doc["machine"]["usable_cpus"])
    if warning:
        log(warning)
    with thread_settings(s.threads[0]):
        doc["gemm_kernels"] = gemm_kernels.describe(threadpool_info())
    for line in doc["gemm_kernels"]["warnings"]:  # early, as well as in the report's header
        log(line)
    for n in s.threads:
        with thread_settings(n):
            peak = measure_peak(n, s.peak_size, s.peak_repeats)
            doc["peaks"][str(n)] = peak
            log(
                f"peak with {n} thread(s): {peak['gflops']:.1f} GFLOP/s "
                f"({peak['n']}^3 sgemm, {peak['blas']['library']})"
            )
            for case in cases:
                if s.max_seconds is not None and time.monotonic() - start > s.max_seconds:
                    doc["not_run"].append(f"{case.id} x{n}")
                    continue
                if progress is not None:
                    progress.set_postfix_str(f"{case.id} x{n}")
                done = [0]

                def tick(done=done):
                    done[0] += 1
                    if progress is not None and done[0] <= calls_per_case(s):
                        progress.update(1)

                doc["cases"].append(run_case(case, s, peak["gflops"], n, tick))
                if progress is not None and done[0] < calls_per_case(s):
                    progress.update(calls_per_case(s) - done[0])
            # The pools as they were while the cases ran (the kernels pin their BLAS at first use).
            peak["threadpools_during_run"] = threadpool_info()
    doc["machine"]["load_at_end"] = cpu_load()
    return doc
