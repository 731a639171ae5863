#include "buffer_pool.h"

#include <cstdlib>
#include <list>
#include <mutex>
#include <new>
#include <utility>

namespace rnnkit_bindings {

namespace {

struct Pool {
    std::mutex mutex;
    std::list<std::pair<std::size_t, void*>> kept;  // oldest first
    std::size_t kept_bytes = 0;
};

// Never destroyed: arrays may be released after the module's static objects are gone.
Pool& pool() {
    static Pool* p = new Pool;
    return *p;
}

constexpr std::size_t kAlign = 64;

}  // namespace

void* pool_take(std::size_t bytes) {
    {
        Pool& p = pool();
        std::lock_guard<std::mutex> lock(p.mutex);
        for (auto it = p.kept.rbegin(); it != p.kept.rend(); ++it)
            if (it->first == bytes) {
                void* ptr = it->second;
                p.kept_bytes -= bytes;
                p.kept.erase(std::next(it).base());
                return ptr;
            }
    }
    void* ptr = std::aligned_alloc(kAlign, (bytes + kAlign - 1) / kAlign * kAlign);
    if (!ptr) throw std::bad_alloc();
    return ptr;
}

void pool_give(void* ptr, std::size_t bytes) {
    std::list<std::pair<std::size_t, void*>> evicted;
    {
        Pool& p = pool();
        std::lock_guard<std::mutex> lock(p.mutex);
        p.kept.emplace_back(bytes, ptr);
        p.kept_bytes += bytes;
        while (p.kept_bytes > kPoolLimit) {
            p.kept_bytes -= p.kept.front().first;
            evicted.splice(evicted.end(), p.kept, p.kept.begin());
        }
    }
    for (auto& e : evicted) std::free(e.second);
}

std::size_t pool_clear() {
    std::list<std::pair<std::size_t, void*>> kept;
    std::size_t bytes;
    {
        Pool& p = pool();
        std::lock_guard<std::mutex> lock(p.mutex);
        kept.swap(p.kept);
        bytes = p.kept_bytes;
        p.kept_bytes = 0;
    }
    for (auto& e : kept) std::free(e.second);
    return bytes;
}

}  // namespace rnnkit_bindings
