// Large output arrays of the kernels (outputs, workspaces, gradients) come from a pool of released
// buffers.
//
// A training loop asks for the same sizes every step. Memory fresh from the OS arrives as zero pages
// that fault in on first touch, which the kernels do inside their time loop, where each fault also holds
// up the thread waiting at the next barrier (bench/kernel_choices.md has what that costs a char-LM
// training step). Released buffers are kept, up to kPoolLimit bytes, for the next request of
// the same size; the oldest go first.
#pragma once

#include <cstddef>
#include <vector>

#include "binding_checks.h"

namespace rnnkit_bindings {

// Below this size malloc serves requests from memory it already has.
constexpr std::size_t kPoolMinBytes = std::size_t(256) << 10;
constexpr std::size_t kPoolLimit = std::size_t(256) << 20;

void* pool_take(std::size_t bytes);
void pool_give(void* p, std::size_t bytes);
// Frees every kept buffer; returns how many bytes that was (rnnkit.empty_cache).
std::size_t pool_clear();

// An uninitialised C-contiguous array, like np.empty.
template <class T>
Array<T> pooled_array(const std::vector<py::ssize_t>& shape) {
    std::size_t n = 1;
    for (py::ssize_t s : shape) n *= std::size_t(s);
    const std::size_t bytes = n * sizeof(T);
    if (bytes < kPoolMinBytes) return Array<T>(shape);
    struct Owner {
        void* p;
        std::size_t bytes;
    };
    auto* owner = new Owner{pool_take(bytes), bytes};
    py::capsule release(owner, [](void* o) {
        auto* w = static_cast<Owner*>(o);
        pool_give(w->p, w->bytes);
        delete w;
    });
    return Array<T>(shape, static_cast<T*>(owner->p), release);
}

}  // namespace rnnkit_bindings
