// The packed-GEMM kernel for avx2.
#pragma GCC target("avx2,fma")
#define RNNKIT_ISA avx2
#define RNNKIT_MR 6
#define RNNKIT_NP 1
#include "packed_gemm_kernel.h"
