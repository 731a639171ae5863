// The barrier of a time loop's steps: spins for a few microseconds, then sleeps.
//
// A step of a small batch (B = 1: sampling, streaming inference) lasts microseconds, and its threads
// meet at a barrier every step. OpenMP's barrier follows OMP_WAIT_POLICY for the whole process: passive
// (rnnkit's default, see rnnkit/__init__.py) sleeps at once and pays a wake-up of several microseconds
// per step; active spins for milliseconds, which on a busy machine burns the time slice the other thread
// needs. This one spins while the others are likely on their way (a step's threads arrive within
// microseconds of each other when they have cores), then sleeps on a futex, so it costs neither; it does
// not depend on OMP_WAIT_POLICY, nor on which library loaded the OpenMP runtime first.
//
// Threads that sleep between calls are often woken onto the core of the thread that woke them, and
// share it until the scheduler's load balancer moves one, tens of milliseconds later; meanwhile every
// step costs a spin and a wake-up (a batch-1 LSTM step at H = 256: 56 us instead of 6.5, and calls of
// one size bimodal: bench/hosts/amd-epyc/SPEED2.md). So each thread notes its CPU at every barrier, and
// one about to wait on a CPU another thread of its team was last seen on moves itself off it: it narrows
// its affinity to the other CPUs it may use, and keeps it narrowed until the call ends (`Member`
// restores it). Restoring it at once let the next wake-up in the same call put the thread back: when the
// other core runs another process's task (a niced build), no CPU is idle, the scheduler wakes the thread
// onto its waker's core, and the whole call could run on one core (the B = 64, T = 100, H = 128 LSTM:
// 12-18 ms instead of 5-6, in about 1 call of 400 while a niced build ran). Once per call and thread:
// the next call's wake-up may put it back (a limit of one move per 100 ms left the first case at 57 us a
// step), and a team that keeps sharing a core within a call has more threads than free cores. A thread
// pinned to one CPU is left where it is.
#pragma once

#include <atomic>
#include <chrono>
#include <thread>

#include <omp.h>

#if defined(__linux__)
#include <sched.h>
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
    void join(int team) {
        team_.store(team, std::memory_order_relaxed);
        if (Seat* s = seat()) s->moved = false, s->cpu.store(current_cpu(), std::memory_order_relaxed);
    }

    // Every thread calls this when its part of the call is done: gives back the CPUs a move took.
    void leave() {
        if (Seat* s = seat()) restore(*s);
    }

    // join() for the life of an object, then leave().
    class Member {
    public:
        Member(TeamBarrier& b, int team) : b_(b) { b_.join(team); }
        ~Member() { b_.leave(); }
        Member(const Member&) = delete;
        Member& operator=(const Member&) = delete;

    private:
        TeamBarrier& b_;
    };

    void wait() {
        const int team = team_.load(std::memory_order_relaxed);
        if (team <= 1) return;
        Seat* me = seat();
        const int cpu = me ? current_cpu() : -1;
        if (me) me->cpu.store(cpu, std::memory_order_relaxed);
        const int gen = generation_.load(std::memory_order_acquire);
        if (arrived_.fetch_add(1, std::memory_order_acq_rel) == team - 1) {
            arrived_.store(0, std::memory_order_relaxed);
            generation_.store(int(unsigned(gen) + 1u), std::memory_order_seq_cst);
            if (sleepers_.load(std::memory_order_seq_cst) > 0) wake_all();
            return;
        }
        // One thread moves at a time, and looks again once it may: a partner that moved a moment ago
        // (the migration may take a while on a busy CPU) has left this CPU, and this one would
        // otherwise follow it onto the CPUs it now holds.
        if (me && !me->moved && cpu >= 0 && shares_cpu(team, me, cpu) &&
            !moving_.exchange(true, std::memory_order_acquire)) {
            if (shares_cpu(team, me, cpu)) {
                me->moved = true, move_off(*me, cpu);
                me->cpu.store(current_cpu(), std::memory_order_relaxed);
            }
            moving_.store(false, std::memory_order_release);
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
    // A thread's last CPU, on its own cache line: each writes it at every barrier.
    struct alignas(64) Seat {
        std::atomic<int> cpu{-1};
        bool moved = false;  // in this call (written by its own thread only)
#if defined(__linux__)
        bool narrowed = false;  // the affinity is `allowed` less one CPU until leave()
        cpu_set_t allowed;
#endif
    };
    static constexpr int kSeats = 8;  // larger teams are not watched

    Seat* seat() {
        const int t = omp_get_thread_num();
        return t < kSeats && team_.load(std::memory_order_relaxed) <= kSeats ? &seats_[t] : nullptr;
    }

    bool shares_cpu(int team, const Seat* me, int cpu) const {
        for (int t = 0; t < team; ++t)
            if (&seats_[t] != me && seats_[t].cpu.load(std::memory_order_relaxed) == cpu) return true;
        return false;
    }

#if defined(__linux__)
    static int current_cpu() { return sched_getcpu(); }

    static void move_off(Seat& s, int cpu) {
        cpu_set_t& allowed = s.allowed;
        if (sched_getaffinity(0, sizeof allowed, &allowed) != 0 || CPU_COUNT(&allowed) < 2 || !CPU_ISSET(cpu, &allowed))
            return;
        cpu_set_t others = allowed;
        CPU_CLR(cpu, &others);
        if (sched_setaffinity(0, sizeof others, &others) != 0) return;
        s.narrowed = true;
    }
    static void restore(Seat& s) {
        if (s.narrowed) s.narrowed = false, sched_setaffinity(0, sizeof s.allowed, &s.allowed);
    }
#else
    static int current_cpu() { return -1; }
    static void move_off(Seat&, int) {}
    static void restore(Seat&) {}
#endif

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
    std::atomic<bool> moving_{false};  // a thread is moving itself off a shared CPU
    Seat seats_[kSeats];
};

}  // namespace rnnkit
