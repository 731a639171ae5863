// The barrier of a time loop's steps: spins for a few microseconds, then sleeps.
//
// A step of a small batch (B = 1: sampling, streaming inference) lasts microseconds, and its threads
// meet at a barrier every step. OpenMP's barrier follows OMP_WAIT_POLICY for the whole process: passive
// (rnnkit's default, see rnnkit/__init__.py) sleeps at once and pays a wake-up of several microseconds
// per step; active spins for milliseconds, which on a busy machine burns the time slice the other thread
// needs. This one spins while the others are likely on their way (a step's threads arrive within
// microseconds of each other when they have cores), then sleeps on a futex, so it costs neither; it does
// not depend on OMP_WAIT_POLICY, nor on which library loaded the OpenMP runtime first.
#pragma once

#include <atomic>
#include <chrono>
#include <thread>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace rnnkit {

class TeamBarrier {
public:
    // How long an early thread spins before it sleeps.
    static constexpr std::chrono::microseconds kSpin{40};

    // Every thread of the team calls this with the team's size before its first wait (they all store
    // the same value, so no thread needs to wait for another to have done it).
    void join(int team) { team_.store(team, std::memory_order_relaxed); }

    void wait() {
        const int team = team_.load(std::memory_order_relaxed);
        if (team <= 1) return;
        const int gen = generation_.load(std::memory_order_acquire);
        if (arrived_.fetch_add(1, std::memory_order_acq_rel) == team - 1) {
            arrived_.store(0, std::memory_order_relaxed);
            generation_.store(int(unsigned(gen) + 1u), std::memory_order_seq_cst);
            if (sleepers_.load(std::memory_order_seq_cst) > 0) wake_all();
            return;
        }
        const auto until = std::chrono::steady_clock::now() + kSpin;
        for (int i = 1;; ++i) {
            if (generation_.load(std::memory_order_acquire) != gen) return;
            pause();
            if (i % 64 == 0 && std::chrono::steady_clock::now() > until) break;
        }
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        while (generation_.load(std::memory_order_seq_cst) == gen) sleep_while(gen);
        sleepers_.fetch_sub(1, std::memory_order_relaxed);
    }

private:
    static void pause() {
#if defined(__x86_64__) || defined(__i386__)
        _mm_pause();
#endif
    }

#if defined(__linux__)
    // Sleeps unless the generation has already moved on (the kernel compares atomically).
    void sleep_while(int gen) {
        syscall(SYS_futex, reinterpret_cast<int*>(&generation_), FUTEX_WAIT_PRIVATE, gen, nullptr, nullptr, 0);
    }
    void wake_all() {
        syscall(SYS_futex, reinterpret_cast<int*>(&generation_), FUTEX_WAKE_PRIVATE, 1 << 30, nullptr, nullptr, 0);
    }
#else
    void sleep_while(int) { std::this_thread::yield(); }
    void wake_all() {}
#endif

    static_assert(sizeof(std::atomic<int>) == sizeof(int), "the futex word is the atomic's int");
    std::atomic<int> team_{1};
    alignas(64) std::atomic<int> arrived_{0};
    alignas(64) std::atomic<int> generation_{0};
    alignas(64) std::atomic<int> sleepers_{0};
};

}  // namespace rnnkit
