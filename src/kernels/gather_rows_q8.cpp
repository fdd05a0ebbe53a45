// Gathered Q8_0 rows in the input-sparse row layout (why and arithmetic:
// gather_rows_q8.h).
#include "kernels/gather_rows_q8.h"

#include <immintrin.h>

#include <algorithm>
#include <type_traits>

#include "kernels/gather_tile-inl.h"
#include "kernels/group_prefetch.h"
#include "kernels/intrinsics_warnings.h"
#include "kernels/sparse_input_q8.h"
#include "kernels/sparse_matmul.h"

FFN_INTRINSICS_WARNINGS_OFF

namespace ffn {

namespace {

// List entries per unit of work: one tile of 8 rows for one token (8 row
// streams in flight, as the input-sparse kernel keeps). Units ahead are
// prefetched as one stream (kernels/group_prefetch.h).
constexpr int kUnitRows = 8;

}  // namespace

void gather_rows_q8(const WeightMatrix& w, const float* x, int64_t n_tok, const int32_t* rows, int64_t n_rows,
                    float* y, ThreadPool& pool, QuantPath path) {
  if (n_tok <= 0 || n_rows <= 0) return;
  relaid::PreparedX& p = relaid::caller_prepared_x();
  relaid::prepare_x(x, n_tok, w.cols, p);
  const bool vnni = path == QuantPath::Vnni || (path == QuantPath::Auto && cpu_has_vnni());
  const int64_t stride = int64_t(sparse_input_row_stride(w.type, w.cols));
  const int64_t first = int64_t(sparse_input_scale_bytes(w.cols));
  const uint64_t pitch = sparse_input_row_pitch(w);
  auto row_at = [&](int64_t i) { return w.packed + uint64_t(rows[std::min(i, n_rows - 1)]) * pitch; };
  const int64_t ahead = prefetch_groups(kUnitRows * stride);  // in units
  // The stream over the unit of list entries from i (the last entry
  // repeated past the list's end).
  auto start_unit = [&](GroupPrefetch<kUnitRows>& later, int64_t i) {
    const uint8_t* unit_rows[kUnitRows];
    for (int r = 0; r < kUnitRows; ++r) unit_rows[r] = row_at(i + r);
    later.start(unit_rows, stride);
  };
  // List entries [i0, i0 + n), n <= 8, every token: 4 tokens x 4 rows per
  // tile while 4 tokens remain (each row's bytes serve 4 tokens), then 8
  // rows per tile for each remaining token.
  auto unit = [&](int64_t i0, int64_t n) {
    const uint8_t* row[kUnitRows];
    for (int64_t r = 0; r < kUnitRows; ++r) row[r] = row_at(i0 + std::min(r, n - 1));
    GroupPrefetch<kUnitRows> later;
    if (ahead > 0 && i0 + ahead * kUnitRows < n_rows) start_unit(later, i0 + ahead * kUnitRows);
    auto tiles = [&](auto type_tag, auto vnni_tag) {
      constexpr DType T = decltype(type_tag)::value;
      constexpr bool kVnni = decltype(vnni_tag)::value;
      const int64_t share = later.share(p.chunks);
      int64_t t = 0;
      for (; t + 4 <= n_tok; t += 4)
        for (int64_t h = 0; h < n; h += 4)
          relaid::gather_tile<T, kVnni, 4, 4>(row + h, later, share, stride, int(std::min<int64_t>(4, n - h)),
                                              first, p, t, y + t * n_rows + i0 + h, n_rows);
      for (; t < n_tok; ++t)
        relaid::gather_tile<T, kVnni, 8, 1>(row, later, share, stride, int(n), first, p, t, y + t * n_rows + i0,
                                            n_rows);
    };
    with_relaid_kernel(w.type, vnni, tiles);
  };
  // The threads' split of the list as for every gather (pieces of 64
  // entries, a multiple of the unit).
  for_each_list_piece(n_rows, n_tok * w.cols, pool, [&](int64_t b, int64_t e) {
    prefetch_first_groups<kUnitRows>(ahead, b, e, start_unit);
    for (int64_t i0 = b; i0 < e; i0 += kUnitRows) unit(i0, std::min<int64_t>(kUnitRows, e - i0));
  });
}

}  // namespace ffn

FFN_INTRINSICS_WARNINGS_ON
