#include <omp.h>

#include <atomic>
#include <stdexcept>

#include "rnnkit/cells/activations.h"
#include "rnnkit/rnnkit.h"

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

namespace rnnkit {

namespace {
std::atomic<int> g_num_threads{0};  // 0: not set, OpenMP's default (OMP_NUM_THREADS or the cores)
}

void set_num_threads(int n) {
    if (n < 1) throw std::invalid_argument("number of threads must be at least 1");
    g_num_threads.store(n, std::memory_order_relaxed);
}

int get_num_threads() {
    const int n = g_num_threads.load(std::memory_order_relaxed);
    return n > 0 ? n : omp_get_max_threads();
}

// GCC's resolver of target_clones("arch=...") tests these same ISA levels.
const char* multiversion_clone() {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("x86-64-v4")) return "x86-64-v4";
    if (__builtin_cpu_supports("x86-64-v3")) return "x86-64-v3";
#endif
    return "baseline";
}

#if defined(__x86_64__) || defined(__i386__)
DenormalsFlushed::DenormalsFlushed() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | 0x8040u); }
DenormalsFlushed::~DenormalsFlushed() { _mm_setcsr(saved_); }
#else
DenormalsFlushed::DenormalsFlushed() : saved_(0) {}
DenormalsFlushed::~DenormalsFlushed() {}
#endif

}  // namespace rnnkit
