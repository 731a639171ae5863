// The packed-GEMM kernel for avx512.
#if defined(__x86_64__)  // elsewhere this TU builds the portable kernel under the same name (never picked)
#pragma GCC target("avx512f,avx512vl,avx512dq,avx512bw,fma,avx2")
#endif
#define RNNKIT_ISA avx512
#define RNNKIT_MR 8
#define RNNKIT_NP 2
#include "rnnkit/gemm/packed_gemm_kernel.h"
