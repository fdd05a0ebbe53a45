// Software prefetch for kernels that stream scattered rows, a group of R
// rows at a time (the activation-sparse products: rows of W^T for active
// inputs, rows of W for active outputs).
//
// A one-token product reads each active row once, whole. The rows are
// scattered, so the hardware prefetchers restart at every one. The kernels
// therefore prefetch the rows of a group that comes later in the list, row
// after row and line after line, in equal shares spread over the steps of
// the group before it: one steady stream while the products run.
//
// Into L2 (hint T1), not L1: a prefetch into L1 holds one of the core's few
// L1 miss buffers until DRAM answers, and scattered rows need many lines in
// flight. Measured on the Zen 5 VM (2026-12-02, BM_SparseInputPrefetch's
// harness, the VNNI input-sparse kernel, W^T 5632 x 2048, 50% and 80% of
// rows): this stream with hint T1 or T2 ran 1.3-1.8x faster than the
// kernels' earlier prefetches (T0, 1 KiB ahead along each of the 8 rows);
// the same stream with hint T0 or NTA ran at 0.72-0.87x of them.
#pragma once

#include <algorithm>
#include <cstdint>

namespace ffn {

template <int R>
class GroupPrefetch {
 public:
  // The stream over R rows (rows[r]: a row's first byte, `bytes` each).
  void start(const uint8_t* const* rows, int64_t bytes) {
    std::copy(rows, rows + R, rows_);
    bytes_ = bytes;
    row_ = 0;
    offset_ = 0;
  }
  // The stream's next `lines` prefetches (64-byte lines); none once it has
  // covered every row, or before start.
  void issue(int64_t lines) {
    for (; lines > 0 && row_ < R; --lines) {
      __builtin_prefetch(rows_[row_] + offset_, 0, 2);  // x86: prefetcht1
      if ((offset_ += 64) >= bytes_) {
        offset_ = 0;
        ++row_;
      }
    }
  }
  // Lines per step that cover the stream in `steps` steps (in `passes`
  // times as many when the stream is spread over several passes).
  int64_t share(int64_t steps) const {
    const int64_t lines = R * ((bytes_ + 63) / 64);
    steps *= passes_;
    return steps > 0 ? (lines + steps - 1) / steps : lines;
  }
  // For a fused kernel whose stream covers the rows of `passes` kernels
  // (each sizing its share by its own steps): each issues 1/passes of it.
  void spread_over(int passes) { passes_ = passes; }

 private:
  const uint8_t* rows_[R] = {};
  int64_t bytes_ = 0;
  int row_ = R;  // where the stream stands; R: done
  int64_t offset_ = 0;
  int passes_ = 1;
};

// A product's first `groups` groups of R list entries from `first` (up to
// `end`), prefetched at once: the rows it reads before its stream of later
// groups is under way. start(p, k) starts p on the group of entries from k.
template <int R, typename Start>
void prefetch_first_groups(int64_t groups, int64_t first, int64_t end, const Start& start) {
  for (int64_t g = 0; g < groups && first + g * R < end; ++g) {
    GroupPrefetch<R> p;
    start(p, first + g * R);
    p.issue(p.share(1));
  }
}

// How many groups ahead a one-token product prefetches, for groups of
// `group_bytes`: whole groups, at least 16 KiB ahead (rows of 2048
// outputs: Q8_0's 8-row groups one, Q4_0's two). Measured as above, two
// groups against one: Q8_0 1.00-1.04x, Q4_0 1.04-1.10x; none: 0.46-0.70x
// of one. override_prefetch_groups replaces it.
int prefetch_groups(int64_t group_bytes);

// Makes prefetch_groups return `groups` from now on (-1: back to the rule
// above). For benchmarks that compare distances in one process
// (BM_SparseInputPrefetch); not for use while products run on other threads.
void override_prefetch_groups(int groups);

}  // namespace ffn
