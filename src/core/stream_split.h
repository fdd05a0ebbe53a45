// Work split for passes bound by memory bandwidth: each thread streams its
// own contiguous region of chunks front to back, and a thread that runs out
// takes chunks from the back of the region with the most left.
//
// Why not a shared counter handing out pieces in turn: every piece a thread
// starts is a new memory stream, and the hardware prefetchers ramp up
// again. In a weights-only replay of a TinyLlama Q4_0 decode step (88
// passes, each cut into 16 pieces taken in turn), that cost ~15% of the
// bandwidth: the same bytes in one pass reached 97-98% of the measured read
// bandwidth, the 88 passes 82-84%. Here each thread starts one stream per
// pass; only the last chunks of a pass move between threads, which keeps
// the threads finishing together (on this shared VM one thread often runs
// ~13% slower than the other on the same bytes).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

namespace ffn {

class StreamSplit {
 public:
  // Chunks [0, n_chunks) in n_threads regions of consecutive chunks.
  // Not thread-safe; call before the pass starts.
  void reset(int64_t n_chunks, int n_threads);

  // The next chunk for `thread` (its own region first, then stolen from the
  // back of another), or -1 once every chunk is claimed. Each chunk is
  // returned exactly once across all threads. Thread-safe.
  int64_t next(int thread);

 private:
  // front << 32 | back: the region's unclaimed chunks are [front, back).
  // One cache line per region: owners do not contend with each other.
  struct alignas(64) Region {
    std::atomic<uint64_t> range{0};
  };
  std::unique_ptr<Region[]> regions_;
  int capacity_ = 0, n_threads_ = 0;
};

}  // namespace ffn
