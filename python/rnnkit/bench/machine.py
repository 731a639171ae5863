"""What the benchmark ran on: CPU, thread pools, library versions and git revision, and the one
place that sets the thread count of every pool the benchmark uses."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Dict, Iterator, Optional

import rnnkit
from rnnkit import _blas_load


def cpu_model() -> str:
    """The CPU's marketing name (Linux: /proc/cpuinfo), else whatever platform knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(dist: str) -> Optional[str]:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def git_revision() -> Optional[Dict[str, object]]:
    """The commit of the rnnkit source tree in use (editable installs and source checkouts), with a
    ``dirty`` flag for uncommitted changes; None for an installed wheel, which has no repository."""
    src = Path(rnnkit.__file__).resolve().parent
    try:

        def git(*args):
            return subprocess.run(
                ["git", "-C", str(src), *args], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()

        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.SubprocessError):
        return None


def cpu_load() -> Dict[str, Optional[float]]:
    """How busy the machine is right now: the 1-minute load average, and on Linux the share of the
    last 10 s in which some task waited for a CPU (/proc/pressure/cpu). On a shared machine this is
    what makes multi-threaded timings noisy: every OpenMP barrier waits for a thread without a core."""
    load: Dict[str, Optional[float]] = {"loadavg_1min": None, "cpu_pressure_pct_10s": None}
    try:
        load["loadavg_1min"] = round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        pass
    try:
        with open("/proc/pressure/cpu") as f:
            some = f.readline().split()  # "some avg10=.. avg60=.. avg300=.. total=.."
        load["cpu_pressure_pct_10s"] = float(dict(kv.split("=") for kv in some[1:])["avg10"])
    except (OSError, KeyError, ValueError, IndexError):
        pass
    return load


def busy_warning(load: Dict[str, Optional[float]], cpus: Optional[int]) -> Optional[str]:
    """A warning if other work competes for the CPUs, else None."""
    avg, pressure = load.get("loadavg_1min"), load.get("cpu_pressure_pct_10s")
    if (pressure is not None and pressure > 20) or (avg is not None and cpus and avg > 0.5 * cpus):
        return (
            f"warning: the machine is busy (load {avg if avg is not None else '?'} on {cpus} CPUs, "
            f"CPU pressure {pressure if pressure is not None else '?'}%): timings, above all with more "
            "than one thread, will be noisy and slow"
        )
    return None


def machine_info() -> Dict[str, object]:
    """CPU, cores, OS, Python, library versions, git revision, thread pools and OpenMP variables."""
    from threadpoolctl import threadpool_info

    try:
        usable: Optional[int] = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    return {
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "versions": {
            "rnnkit": rnnkit.__version__,
            **{d: _version(d) for d in ("numpy", "torch", "threadpoolctl", "scipy-openblas32")},
        },
        "git": git_revision(),
        "load_at_start": cpu_load(),
        "threadpools": threadpool_info(),
        "env": {
            k: v
            for k, v in os.environ.items()
            if k.startswith(("OMP_", "OPENBLAS_", "MKL_", "GOMP_", "KMP_", "RNNKIT_BLAS_"))
        },
    }


@contextlib.contextmanager
def threads(n: int) -> Iterator[None]:
    """Run rnnkit's kernels, torch and NumPy's BLAS (the reference's GEMMs) on ``n`` threads each;
    restore the previous settings afterwards.

    rnnkit's own OpenBLAS is left alone on purpose: the kernels pin it to one thread and parallelise
    around it, and raising it would put a BLAS thread pool inside every OpenMP thread.
    """
    from threadpoolctl import ThreadpoolController

    old_rnnkit = rnnkit.get_num_threads()
    rnnkit.set_num_threads(n)
    torch = sys.modules.get("torch")
    old_torch = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(n)
    own = [d for d in [_blas_load.library_dir()] if d]
    ctl = ThreadpoolController()
    others = [
        lib["filepath"]
        for lib in ctl.info()
        if lib["user_api"] == "blas" and not any(str(Path(lib["filepath"]).resolve()).startswith(d) for d in own)
    ]
    limiter = ctl.select(filepath=others).limit(limits=n) if others else contextlib.nullcontext()
    try:
        with limiter:
            yield
    finally:
        rnnkit.set_num_threads(old_rnnkit)
        if torch is not None:
            torch.set_num_threads(old_torch)
