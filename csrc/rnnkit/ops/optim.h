// The parameter updates of rnnkit.optim, each one fused pass over a parameter and its buffers (NumPy
// makes one pass, and one temporary array, per operation), and the sum of squares that clipping by
// global norm needs.
#pragma once

#include <cstddef>

namespace rnnkit {

enum class UpdateRule {
    Sgd,      // v = momentum*v + g; p -= lr*v                                      (a = momentum)
    Adagrad,  // s += g*g; p -= lr*g / sqrt(s + eps)
    RmsProp,  // s = alpha*s + (1-alpha)*g*g; p -= lr*g / (sqrt(s) + eps)             (a = alpha)
    Adam,     // m += (1-b1)*(g-m); v = b2*v + (1-b2)*g*g;
              // p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)                 (a = b1, b = b2)
};

struct Update {
    UpdateRule rule;
    double lr, a, b, eps;
    long step;  // t, counted from 1 (Adam's bias corrections)
};

// p, g and the buffers s1 (velocity / sum of squares / average of squares / Adam's m) and s2 (Adam's
// v; unused otherwise) hold n values each. Elementwise, so the result does not depend on threads.
template <class T>
void apply_update(const Update& u, std::size_t n, T* p, const T* g, T* s1, T* s2);

// Sum of x[i]^2 in double, in an order fixed by n alone (blocks summed in index order), so a clipped
// training run is reproducible at any thread count.
template <class T>
double sum_of_squares(std::size_t n, const T* x);

}  // namespace rnnkit
