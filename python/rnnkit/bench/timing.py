"""Interleaved median timing of several implementations of the same computation.

Why interleaved: on a shared machine the speed of the CPU drifts (other processes, frequency, cache
state). Timing A ten times and then B ten times lets a drift land on one of them only; taking turns
(A, B, C, A, B, C, ...) spreads it over all. The order also rotates every round, so no implementation
always runs right after the same other one (whose BLAS or OpenMP threads may still be spinning).

Before every timed call the process also waits until its other threads are idle (`settle`): after
a NumPy matmul, OpenBLAS's worker threads keep spinning for about 0.1 s (measured here), and on a
small machine that takes a core away from whichever implementation runs next. Without the wait, the
reference's BLAS would slow rnnkit's and torch's calls that follow it.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence


@dataclass
class Timed:
    """One implementation to time.

    run: the timed call. setup: untimed preparation before each call (e.g. clearing gradients).
    repeats: timed calls wanted. warmup: untimed calls first (first-touch of memory, thread start-up).
    """

    name: str
    run: Callable[[], object]
    setup: Optional[Callable[[], object]] = None
    repeats: int = 5
    warmup: int = 1


_TASKS = "/proc/self/task"


def _others_running() -> bool:
    """Whether another thread of this process is runnable (state R: working or spin-waiting)."""
    me = threading.get_native_id()
    for tid in os.listdir(_TASKS):
        if int(tid) == me:
            continue
        try:
            with open(f"{_TASKS}/{tid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]  # the field after "(comm)"
        except (OSError, IndexError):  # the thread ended meanwhile
            continue
        if state == "R":
            return True
    return False


def settle(max_wait: float = 0.5) -> float:
    """Wait until no other thread of this process is running, at most ``max_wait`` seconds; returns
    the seconds waited. Where threads cannot be inspected (no /proc), waits a fixed 0.12 s, longer
    than OpenBLAS's default spin."""
    start = time.perf_counter()
    if not os.path.isdir(_TASKS):
        time.sleep(0.12)
    else:
        while _others_running() and time.perf_counter() - start < max_wait:
            time.sleep(0.002)
    return time.perf_counter() - start


def _call(t: Timed) -> float:
    if t.setup is not None:
        t.setup()
    settle()
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection in the middle of one call is noise, not the implementation's cost
    try:
        start = time.perf_counter()
        t.run()
        return time.perf_counter() - start
    finally:
        if gc_was_enabled:
            gc.enable()


def time_interleaved(impls: Sequence[Timed], on_call: Optional[Callable[[], None]] = None) -> Dict[str, List[float]]:
    """Time every implementation in turns; returns name -> list of seconds, one per timed call.

    Warm-up calls also take turns. Implementations with fewer repeats drop out of the later rounds.
    ``on_call`` is called after every call (timed or not), e.g. to advance a progress bar.
    """
    times: Dict[str, List[float]] = {t.name: [] for t in impls}
    active = [t for t in impls if t.repeats > 0 or t.warmup > 0]
    for w in range(max((t.warmup for t in active), default=0)):
        for t in active:
            if w < t.warmup:
                _call(t)
                if on_call:
                    on_call()
    rounds = max((t.repeats for t in active), default=0)
    for r in range(rounds):
        gc.collect()
        order = [t for t in active if r < t.repeats]
        k = r % len(order) if order else 0
        for t in order[k:] + order[:k]:  # rotate the order every round
            times[t.name].append(_call(t))
            if on_call:
                on_call()
    return times


def median(values: Sequence[float]) -> float:
    """The median (mean of the two middle values for an even count)."""
    s = sorted(values)
    n = len(s)
    if n == 0:
        raise ValueError("median of no values")
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])
