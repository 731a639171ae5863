#include <omp.h>

#include <stdexcept>

#include "rnnkit/cells/activations.h"
#include "rnnkit/rnnkit.h"

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

namespace rnnkit {

void set_num_threads(int n) {
    if (n < 1) throw std::invalid_argument("number of threads must be at least 1");
    omp_set_num_threads(n);
}

int get_num_threads() { return omp_get_max_threads(); }

#if defined(__x86_64__) || defined(__i386__)
DenormalsFlushed::DenormalsFlushed() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | 0x8040u); }
DenormalsFlushed::~DenormalsFlushed() { _mm_setcsr(saved_); }
#else
DenormalsFlushed::DenormalsFlushed() : saved_(0) {}
DenormalsFlushed::~DenormalsFlushed() {}
#endif

}  // namespace rnnkit
