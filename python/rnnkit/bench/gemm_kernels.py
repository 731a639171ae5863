"""Which GEMM kernels a benchmark ran on, and whether they are below what the CPU supports.

Every OpenBLAS copy in the process (rnnkit's own, NumPy's, SciPy's) picks its kernels, its "core type",
once when it loads, from the CPU or from OPENBLAS_CORETYPE; threadpoolctl reports the choice as the
pool's ``architecture``. A copy held to older kernels than the CPU has (e.g. Haswell's AVX2 ones on an
AVX-512 CPU) runs its large products at about half speed, and nothing else says so: the benchmark
prints each copy's choice and warns about those below the CPU. torch's MKL and oneDNN do not read
OPENBLAS_CORETYPE; torch reports the instruction set it dispatches to itself.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Dict, List, Optional, Sequence

#: Instruction-set levels, lowest first.
ISA_LEVELS = ("sse", "avx", "avx2", "avx512")

#: The instruction set of each x86 OpenBLAS core type that uses more than SSE (names as
#: openblas_get_corename and threadpoolctl's ``architecture`` give them, compared case-insensitively);
#: every other x86 core type is SSE only.
_CORE_ISA = {
    "skylakex": "avx512",
    "cooperlake": "avx512",
    "sapphirerapids": "avx512",
    "haswell": "avx2",
    "zen": "avx2",
    "excavator": "avx2",
    "sandybridge": "avx",
    "bulldozer": "avx",
    "piledriver": "avx",
    "steamroller": "avx",
}
_X86_CORES = set(_CORE_ISA) | {
    "katmai",
    "coppermine",
    "northwood",
    "prescott",
    "banias",
    "atom",
    "core2",
    "penryn",
    "dunnington",
    "nehalem",
    "athlon",
    "opteron",
    "opteron_sse3",
    "barcelona",
    "nano",
    "bobcat",
}

#: rnnkit's packed-kernel dispatch names (``_C.kernels()["packed_gemm"]``) as ISA levels.
_DISPATCH_ISA = {"avx512": "avx512", "avx2": "avx2", "generic": "sse"}


def core_isa(architecture: Optional[str]) -> Optional[str]:
    """The instruction set of an OpenBLAS core type, or None if it is not an x86 one this table knows."""
    if not architecture:
        return None
    name = architecture.lower()
    if name in _CORE_ISA:
        return _CORE_ISA[name]
    return "sse" if name in _X86_CORES else None


def cpu_isa() -> Optional[str]:
    """The widest instruction set of this CPU, as rnnkit's own kernel dispatch sees it (None if unknown)."""
    from rnnkit import _C

    return _DISPATCH_ISA.get(dict(_C.kernels()).get("packed_gemm", ""))


def _owner(filepath: str, rnnkit_dir: Optional[str]) -> str:
    path = os.path.realpath(filepath)
    if rnnkit_dir and path.startswith(rnnkit_dir):
        return "rnnkit"
    for owner in ("numpy", "scipy", "torch"):
        if f"{os.sep}{owner}.libs{os.sep}" in path or f"{os.sep}{owner}{os.sep}" in path:
            return owner
    return "other"


#: What each library's GEMMs serve in the benchmark.
_ROLE = {
    "rnnkit": "rnnkit's kernels",
    "numpy": "the NumPy reference",
    "torch": "torch",
    "scipy": "nothing timed",
    "other": "unknown",
}


def describe(threadpools: Sequence[Dict[str, Any]], cpu: Optional[str] = None) -> Dict[str, Any]:
    """The BLAS libraries of ``threadpools`` (threadpoolctl's threadpool_info()) and torch's CPU kernels,
    each with its core type and instruction set, and the warnings for those below the CPU.

    rnnkit's own OpenBLAS runs one thread inside each of the kernels' OpenMP threads (the kernels pin
    it), whatever its pool says. ``cpu``: the CPU's instruction set (default: `cpu_isa`).
    """
    import rnnkit
    from rnnkit import _blas_load

    cpu = cpu or cpu_isa()
    rnnkit_dir = _blas_load.library_dir()
    libraries: List[Dict[str, Any]] = []
    for pool in threadpools:
        if pool.get("user_api") != "blas":
            continue
        owner = _owner(pool.get("filepath", ""), rnnkit_dir)
        isa = core_isa(pool.get("architecture"))
        entry = {
            "owner": owner,
            "role": _ROLE[owner],
            "internal_api": pool.get("internal_api"),
            "version": pool.get("version"),
            "architecture": pool.get("architecture"),
            "isa": isa,
            "threads": pool.get("num_threads"),
            "threading_layer": pool.get("threading_layer"),
            "filepath": pool.get("filepath"),
            "below_cpu": bool(isa and cpu and ISA_LEVELS.index(isa) < ISA_LEVELS.index(cpu)),
        }
        if owner == "rnnkit":
            entry["threads"] = "1 in each OpenMP thread of the kernels"
            entry["core_type_choice"] = rnnkit.BLAS_LOAD.describe()
        libraries.append(entry)
    libraries.sort(key=lambda e: e["owner"] != "rnnkit")  # rnnkit's own first
    torch = sys.modules.get("torch")
    torch_isa = None
    if torch is not None:
        try:
            torch_isa = torch.backends.cpu.get_cpu_capability()
        except (AttributeError, RuntimeError):  # an older torch
            pass
    warnings = [
        f"warning: {e['role']} ran on {e['internal_api']} {e['version']} with {e['architecture']} kernels "
        f"({e['isa'].upper()}) on a CPU with {cpu.upper()}"
        + (
            f": rnnkit's large products run slower than this CPU allows (core type {e['core_type_choice']})"
            if e["owner"] == "rnnkit"
            else ": its times are slower than the CPU allows" + _variable_note()
        )
        for e in libraries
        if e["below_cpu"] and cpu
    ]
    return {"cpu_isa": cpu, "libraries": libraries, "torch_cpu_capability": torch_isa, "warnings": warnings}


def _variable_note() -> str:
    value = os.environ.get("OPENBLAS_CORETYPE")
    return f" (OPENBLAS_CORETYPE={value} holds it there)" if value else ""


def lines(info: Dict[str, Any]) -> List[str]:
    """The description as text, one library a line, then the warnings."""
    out = []
    for e in info["libraries"]:
        arch = f"{e['architecture']} ({e['isa'].upper()})" if e.get("isa") else str(e.get("architecture"))
        text = f"GEMM for {e['role']}: {e['internal_api']} {e['version']}, core type {arch}, threads {e['threads']}"
        if e.get("core_type_choice"):
            text += f"; core type {e['core_type_choice']}"
        out.append(text)
    if info.get("torch_cpu_capability"):
        out.append(f"GEMM for torch: MKL / oneDNN, CPU capability {info['torch_cpu_capability']}")
    if info.get("cpu_isa"):
        out.append(f"widest instruction set of this CPU (rnnkit's dispatch): {info['cpu_isa'].upper()}")
    return out + list(info.get("warnings", []))
