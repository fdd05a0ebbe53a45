// The engine's one persistent thread pool.
//
// All parallel work (matrix products, attention heads) goes through
// parallel_for on this pool; mixing pools oversubscribes small machines and
// ruins decode latency. The calling thread takes part in the work, so a pool
// of n threads starts n-1 workers.
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
  std::mutex mutex_;
  std::condition_variable start_cv_;
  std::condition_variable done_cv_;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stop_ = false;
  int64_t job_n_ = 0;
  const std::function<void(int64_t, int64_t, int)>* job_ = nullptr;
};

}  // namespace ffn
