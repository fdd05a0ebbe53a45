// Software prefetch for kernels that stream scattered rows, a group of R
// rows at a time (the activation-sparse products: rows of W^T for active
// inputs, rows of W for active outputs).
//
// A one-token product reads each active row once, whole. The rows are
// scattered, so the hardware prefetchers restart at every one. Two patterns
// help, and which helps more depends on the CPU:
//
// Group stream (GroupPrefetch::issue): the rows of a group that comes later
// in the list, row after row and line after line, in equal shares spread
// over the steps of the group before it, into L2 (hint T1). Measured on the
// Zen 5 VM (2026-12-02, BM_SparseInputPrefetch's harness, the VNNI
// input-sparse kernel, W^T 5632 x 2048, 50% and 80% of rows): 1.3-1.8x
// faster than prefetching 1 KiB ahead along each row with hint T0; the same
// stream with hint T0 or NTA ran at 0.72-0.87x of that.
//
// Along rows (prefetch_along): at each step, the line kAlongBytes ahead of
// where each of the group's rows is being read; past a row's end, the
// start of the same row of the group ahead, so the prefetches run on into
// the next group without a gap. Measured on an Intel Xeon with AMX
// (2026-12-03, BM_SparseInputPattern: the VNNI kernel, one token, the two
// patterns alternating call by call; TinyLlama's W^T of down at 30% of
// rows, of gate|up at 50%, of q|k|v at 75%), along / stream on 2 threads:
// Q8_0 1.08x, 1.21-1.39x, 1.03-1.07x; Q4_0 1.00x, 1.15-1.21x, 0.88-0.93x.
// Hint T0 instead of T1 was 1-7% slower, 1 KiB ahead 0-15% slower, 16-row
// groups no faster. On the Zen 5 VM the stream was the better one against
// the kernels' earlier prefetches (1 KiB ahead along each row, hint T0);
// this pattern has not been measured on an AMD CPU.
//
// kernel_prefetch_pattern() picks the pattern per CPU for the kernels that
// implement both (the one-token input-sparse products, VNNI and stored-row,
// and both fused gated-row kernels); the others (the gathers) construct
// their GroupPrefetch with the default, the stream.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>

namespace ffn {

enum class PrefetchPattern { kGroupStream, kAlongRows };

// How far ahead of the reading position the along-rows pattern prefetches.
constexpr int64_t kAlongBytes = 512;

template <int R>
class GroupPrefetch {
 public:
  explicit GroupPrefetch(PrefetchPattern pattern = PrefetchPattern::kGroupStream) : pattern_(pattern) {}

  // The group ahead: R rows (rows[r]: a row's first byte, `bytes` each).
  void start(const uint8_t* const* rows, int64_t bytes) {
    std::copy(rows, rows + R, rows_);
    bytes_ = bytes;
    row_ = 0;
    offset_ = 0;
    ahead_ = true;
  }
  // No group ahead (the list ends here): prefetch_along stays within the
  // current rows and issue() has nothing left.
  void stop() {
    row_ = R;
    ahead_ = false;
  }

  // Group stream: the next `lines` prefetches (64-byte lines); none once it
  // has covered every row, before start, or with the along-rows pattern.
  void issue(int64_t lines) {
    if (pattern_ == PrefetchPattern::kAlongRows) return;
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

  // For the along-rows pattern (prefetch_along below).
  bool along_rows() const { return pattern_ == PrefetchPattern::kAlongRows; }
  // Byte `offset` of the group ahead's row r (its last byte if offset is
  // beyond it); `none` when there is no group ahead.
  const uint8_t* ahead_byte(int r, int64_t offset, const uint8_t* none) const {
    return ahead_ ? rows_[r] + std::min(offset, bytes_ - 1) : none;
  }

 private:
  PrefetchPattern pattern_;
  const uint8_t* rows_[R] = {};
  int64_t bytes_ = 0;
  int row_ = R;  // where the stream stands; R: done
  int64_t offset_ = 0;
  int passes_ = 1;
  bool ahead_ = false;
};

// Along rows: a kernel's step reads kStep bytes from byte `offset` of each
// of N rows (current[r], of any element type; each ends `end` bytes after
// current[r]). Prefetch the lines kAlongBytes further on: in the row or,
// past its end, in later's group ahead (row r from its first byte; with no
// group ahead, current[r] again, in cache by then). Kernels call it at
// every step; with steps shorter than a line (Q4_0's 32 bytes) only the
// step that starts a line prefetches, which the compute-bound Q4_0 kernel
// needs (prefetching each line twice: 0.78-0.92x of the stream on q|k|v).
// Nothing with the group-stream pattern.
// Written out as one select per row and always inlined: other forms of the
// same prefetches (a member function, a loop over the lines of a step,
// a branch per row) compiled into a one-token Q8_0 product that ran 8-25%
// slower on the AMX Xeon (not analysed further).
template <int N, int64_t kStep = 64, int R, typename E>
__attribute__((always_inline)) inline void prefetch_along(const GroupPrefetch<R>& later, const E* const* current,
                                                          int64_t offset, int64_t end) {
  static_assert(N <= R && kStep > 0);
  if constexpr (kStep > 64) {
    // Several lines per step (the stored-row tile): one call per line.
    for (int64_t line_at = 0; line_at < kStep; line_at += 64)
      prefetch_along<N, 64>(later, current, offset + line_at, end);
  } else if (later.along_rows() && offset % 64 == 0) {
    for (int r = 0; r < N; ++r) {
      const int64_t at = offset + kAlongBytes;
      const uint8_t* row = reinterpret_cast<const uint8_t*>(current[r]);
      const uint8_t* line = at < end ? row + at : later.ahead_byte(r, at - end, row);
      __builtin_prefetch(line, 0, 2);  // x86: prefetcht1
    }
  }
}

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

// The pattern the kernels that implement both use on this CPU: along rows
// on Intel CPUs, the group stream elsewhere (measured above); FFN_PREFETCH
// = rows | groups overrides it (read once), override_prefetch_pattern too.
PrefetchPattern kernel_prefetch_pattern();
// For benchmarks that compare the patterns in one process; nullopt: back to
// the rule above. Not for use while products run on other threads.
void override_prefetch_pattern(std::optional<PrefetchPattern> pattern);

// Makes prefetch_groups return `groups` from now on (-1: back to the rule
// above). For benchmarks that compare distances in one process
// (BM_SparseInputPrefetch); not for use while products run on other threads.
void override_prefetch_groups(int groups);

}  // namespace ffn
