"""``rnnkit info``: what a bug report needs about this installation.

The version, how the extension was compiled, the kernels its run-time dispatch picked on this CPU, the
BLAS libraries loaded (with the core type OpenBLAS chose and their threads, from threadpoolctl) and the
OpenMP threads. ``python -m rnnkit`` with no arguments prints the same.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from typing import Any, Dict, List, Optional

# The environment variables that change what the kernels or the BLAS do.
ENVIRONMENT = (
    "OMP_NUM_THREADS",
    "OMP_WAIT_POLICY",
    "OPENBLAS_NUM_THREADS",
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "RNNKIT_BLAS_CORETYPE",
)


def _cpu_model() -> Optional[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _threadpools() -> List[Dict[str, Any]]:
    from threadpoolctl import threadpool_info

    keys = ("user_api", "internal_api", "filepath", "version", "num_threads", "threading_layer", "architecture")
    return [{k: pool[k] for k in keys if k in pool} for pool in threadpool_info()]


def collect() -> Dict[str, Any]:
    """Everything ``rnnkit info`` prints, as a JSON-serialisable dict."""
    import numpy

    import rnnkit
    from rnnkit import _C, _blas_load

    pools = _threadpools()
    return {
        "rnnkit": rnnkit.__version__,
        "location": os.path.dirname(os.path.abspath(rnnkit.__file__)),
        "python": sys.version.split()[0],
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "build": dict(_C.build_info()),
        "kernels": dict(_C.kernels()),
        "openmp_threads": rnnkit.get_num_threads(),
        "blas": [p for p in pools if p.get("user_api") == "blas"],
        "blas_core_type": {"rnnkit": _blas_load.corename(), "how": rnnkit.BLAS_LOAD.describe()},
        "openmp": [p for p in pools if p.get("user_api") == "openmp"],
        "environment": {k: os.environ[k] for k in ENVIRONMENT if k in os.environ},
    }


def _pool_line(pool: Dict[str, Any]) -> str:
    parts = [f"{pool.get('internal_api')} {pool.get('version')}", f"threads {pool.get('num_threads')}"]
    if pool.get("architecture"):
        parts.append(f"core type {pool['architecture']}")
    if pool.get("threading_layer"):
        parts.append(f"threading {pool['threading_layer']}")
    return ", ".join(parts) + f"\n      {pool.get('filepath')}"


def format_info(info: Dict[str, Any]) -> str:
    """The report as text, one item a line."""
    build, kernels = info["build"], info["kernels"]
    lines = [
        f"rnnkit {info['rnnkit']} ({info['location']})",
        f"python {info['python']}, numpy {info['numpy']}, {info['platform']}",
        f"cpu: {info['cpu']}",
        f"build: {build['compiler']}, C++ {build['cplusplus']}, OpenMP {build['openmp']}",
        f"  compile args: {build['compile_args']}",
        "  baseline instruction sets: " + (", ".join(build["baseline_isa"]) or "x86-64 (portable)"),
        "kernels on this cpu: " + ", ".join(f"{k} {v}" for k, v in kernels.items()),
        f"openmp threads (rnnkit.get_num_threads): {info['openmp_threads']}",
    ]
    core = info["blas_core_type"]
    lines.append(f"rnnkit's blas core type: {core['rnnkit']}, {core['how']}")
    lines += ["blas:"] + [f"  {_pool_line(p)}" for p in info["blas"]]
    lines += ["openmp runtimes:"] + [f"  {_pool_line(p)}" for p in info["openmp"]]
    env = info["environment"]
    lines.append("environment: " + (", ".join(f"{k}={v}" for k, v in env.items()) or "(none of the tuning variables)"))
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None, prog: str = "rnnkit info") -> int:
    """Print the report; returns the exit code."""
    from .cliutil import Parser, run

    parser = Parser(
        prog=prog,
        description="Print rnnkit's version, build flags, the kernels chosen on this CPU, the BLAS (core type, "
        "threads) and the OpenMP threads: paste it into a bug report.",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)

    def body() -> int:
        info = collect()
        print(json.dumps(info, indent=2) if args.json else format_info(info))
        return 0

    return run(prog, body)
