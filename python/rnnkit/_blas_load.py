"""Loading rnnkit's own OpenBLAS (the scipy-openblas32 wheel) with the kernels this CPU supports.

OpenBLAS picks its kernels (its "core type") once, in the library's constructor, from the CPU, unless
OPENBLAS_CORETYPE names one. Machines and clusters set that variable for old OpenBLAS builds that do not
know their CPU; on an AVX-512 CPU ``OPENBLAS_CORETYPE=Haswell`` holds every OpenBLAS in the process to
AVX2 kernels, half the speed of the AVX-512 ones for rnnkit's large products (input projections, weight
gradients; bench/hosts/amd-epyc/coretype_choice.txt), while torch's MKL and oneDNN ignore it. The
bundled OpenBLAS is recent enough to know the CPU, so rnnkit hides the variable from its copy only,
while that copy loads, and restores it at once: NumPy's and SciPy's own OpenBLAS copies, loaded before
or after, still see it. ``RNNKIT_BLAS_CORETYPE`` forces a core type on rnnkit's copy instead (any name
OpenBLAS's OPENBLAS_CORETYPE accepts, e.g. Haswell or SkylakeX).
"""

from __future__ import annotations

import ctypes
import glob
import os
import sys
from dataclasses import dataclass
from typing import Optional

#: The variable that forces a core type on rnnkit's OpenBLAS (and on nothing else).
OVERRIDE = "RNNKIT_BLAS_CORETYPE"
#: OpenBLAS's own variable, which every OpenBLAS copy reads when it loads.
OPENBLAS_VARIABLE = "OPENBLAS_CORETYPE"


@dataclass(frozen=True)
class BlasLoad:
    """How rnnkit's OpenBLAS chose its core type.

    source: "cpu" (detected from the CPU), "RNNKIT_BLAS_CORETYPE" (forced by that variable) or
    "already loaded" (scipy_openblas32 was imported before rnnkit, so its choice, whatever the
    environment said then, stands). hidden: the OPENBLAS_CORETYPE value kept from rnnkit's copy, if any.
    """

    source: str
    hidden: Optional[str] = None
    forced: Optional[str] = None

    def describe(self) -> str:
        """How the core type was chosen, in words (``rnnkit info``, ``rnnkit bench``)."""
        if self.source == OVERRIDE:
            return f"asked for by {OVERRIDE}={self.forced}"
        if self.source == "cpu":
            return "detected from the CPU" + (
                f" ({OPENBLAS_VARIABLE}={self.hidden} is not applied to rnnkit's copy; set {OVERRIDE} to force one)"
                if self.hidden
                else ""
            )
        return "chosen when scipy_openblas32 was imported before rnnkit (rnnkit could not choose it)"


def load() -> BlasLoad:
    """Import scipy_openblas32 (which loads the library the extension links against) with the core type
    from the CPU or from RNNKIT_BLAS_CORETYPE; OPENBLAS_CORETYPE is as it was afterwards."""
    if "scipy_openblas32" in sys.modules:
        return BlasLoad("already loaded")
    forced = os.environ.get(OVERRIDE) or None
    hidden = os.environ.get(OPENBLAS_VARIABLE)
    try:
        if forced:
            os.environ[OPENBLAS_VARIABLE] = forced
        else:
            os.environ.pop(OPENBLAS_VARIABLE, None)
        import scipy_openblas32  # noqa: F401  its import dlopens the library: the constructor runs now
    finally:
        if hidden is None:
            os.environ.pop(OPENBLAS_VARIABLE, None)
        else:
            os.environ[OPENBLAS_VARIABLE] = hidden
    if forced:
        return BlasLoad(OVERRIDE, hidden=None, forced=forced)
    return BlasLoad("cpu", hidden=hidden)


def library() -> Optional[ctypes.CDLL]:
    """rnnkit's OpenBLAS through ctypes (the handle ``import rnnkit`` loaded), or None if it cannot be
    loaded or lacks the scipy-prefixed symbols."""
    try:
        import scipy_openblas32

        lib_dir, name = scipy_openblas32.get_lib_dir(), scipy_openblas32.get_library()
        paths = sorted(
            glob.glob(os.path.join(lib_dir, f"lib{name}.*")) + glob.glob(os.path.join(lib_dir, f"{name}.dll"))
        )
        lib = ctypes.CDLL(paths[0])
        lib.scipy_cblas_sgemm  # noqa: B018  raises AttributeError if the symbol is missing
        lib.scipy_openblas_get_corename.restype = ctypes.c_char_p
        lib.scipy_openblas_get_config.restype = ctypes.c_char_p
        return lib
    except Exception:  # any failure means: no such library to use, and the callers say so
        return None


def corename() -> Optional[str]:
    """The core type rnnkit's OpenBLAS runs (e.g. "SkylakeX", "Haswell"), or None without it."""
    lib = library()
    return None if lib is None else lib.scipy_openblas_get_corename().decode(errors="replace")


def library_dir() -> Optional[str]:
    """The directory of rnnkit's OpenBLAS library file (to tell it from other OpenBLAS copies)."""
    try:
        import scipy_openblas32

        return os.path.realpath(scipy_openblas32.get_lib_dir())
    except Exception:  # not importable: there is no such library to tell apart
        return None


#: How rnnkit's OpenBLAS chose its core type (importing this module loads it).
BLAS_LOAD = load()
