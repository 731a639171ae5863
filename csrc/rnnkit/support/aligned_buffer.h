// Scratch memory for the kernels: uninitialised and aligned to a cache line.
//
// Packed weight panels are read once per time step; when a panel starts mid-line every load of it
// touches one more line. Nor is the memory zero-filled: every element is written before it is read, and
// filling a weight-sized buffer on each call costs a pass over it (bench/kernel_choices.md has both
// measurements).
#pragma once

#include <cstddef>
#include <new>

namespace rnnkit {

template <class T>
class AlignedBuffer {
public:
    static constexpr std::size_t kAlignment = 64;

    AlignedBuffer() = default;
    explicit AlignedBuffer(std::size_t n) { reserve(n); }
    AlignedBuffer(const AlignedBuffer&) = delete;
    AlignedBuffer& operator=(const AlignedBuffer&) = delete;
    ~AlignedBuffer() { release(); }

    // At least n elements; contents are not kept when it grows. A buffer kept between calls (the
    // single-step decoder's) allocates nothing once it is large enough.
    void reserve(std::size_t n) {
        if (n <= capacity_) return;
        release();
        data_ = static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(kAlignment)));
        capacity_ = n;
    }

    T* data() const { return data_; }

private:
    void release() {
        if (data_) ::operator delete(data_, std::align_val_t(kAlignment));
        data_ = nullptr;
        capacity_ = 0;
    }

    T* data_ = nullptr;
    std::size_t capacity_ = 0;
};

}  // namespace rnnkit
