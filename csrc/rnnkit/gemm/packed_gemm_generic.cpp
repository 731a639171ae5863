// The packed-GEMM kernel for generic.
// baseline instruction set (SSE2 on x86-64)
#define RNNKIT_ISA generic
#define RNNKIT_MR 4
#define RNNKIT_NP 1
#include "rnnkit/gemm/packed_gemm_kernel.h"
