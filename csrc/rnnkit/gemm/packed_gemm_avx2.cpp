// The packed-GEMM kernel for avx2.
#if defined(__x86_64__)  // elsewhere this TU builds the portable kernel under the same name (never picked)
#pragma GCC target("avx2,fma")
#endif
#define RNNKIT_ISA avx2
#define RNNKIT_MR 6
#define RNNKIT_NP 1
#include "rnnkit/gemm/packed_gemm_kernel.h"
