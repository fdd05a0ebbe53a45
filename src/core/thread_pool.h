// The engine's one persistent thread pool.
//
// All parallel work (matrix products, attention heads) goes through
// parallel_for on this pool; mixing pools oversubscribes small machines and
// ruins decode latency. The calling thread takes part in the work, so a pool
// of n threads starts n-1 workers.
//
// Decode issues hundreds of small parallel_for calls per token, so waking a
// sleeping thread (~5-50 us through the kernel) would dominate. Workers
// therefore spin on an atomic job counter for a short while after each job
// and only then sleep on a condition variable; the caller spins for
// completion.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace ffn {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(begin, end, thread_index) over a split of [0, n) into one
  // contiguous chunk per thread. Returns when all calls have returned.
  // fn must not throw.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn);

  // The process-wide pool used by the engine (created on first use with
  // the hardware thread count unless set_global_threads ran before).
  static ThreadPool& global();
  static void set_global_threads(int n_threads);

 private:
  void worker_loop(int index);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;                 // guards sleeping and the condition variable
  std::condition_variable start_cv_;
  std::atomic<uint64_t> generation_{0};  // bumped once per job
  std::atomic<int> pending_{0};          // workers still running the job
  std::atomic<bool> stop_{false};
  int64_t job_n_ = 0;                    // written before generation_ is bumped
  const std::function<void(int64_t, int64_t, int)>* job_ = nullptr;
};

}  // namespace ffn
