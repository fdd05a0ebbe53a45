// Input-sparse Q8_0 product with integer dot products (layout and
// arithmetic: sparse_input_q8.h). Serves the activation-sparsity methods of
// TEAL (Liu et al. 2024, "Training-Free Activation Sparsity in Large Language
// Models"), CATS (Lee et al. 2024) and CHESS (Zhang et al. 2024): whatever
// picks the active inputs, this reads only their rows of W^T.
#include "kernels/intrinsics_warnings.h"
#include "kernels/sparse_input_q8.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/mapped_file.h"
#include "core/thread_pool.h"
#include "kernels/byte_dot.h"
#include "kernels/group_prefetch.h"
#include "kernels/convert.h"
#include "kernels/matmul_quant.h"
#include "kernels/packed_quant.h"
#include "kernels/quant_blocks.h"
#include "kernels/relaid_chunk.h"
#include "kernels/sparse_input_group-inl.h"

FFN_INTRINSICS_WARNINGS_OFF

namespace ffn {

namespace {

constexpr int64_t kChunk = kRelaidChunk;  // outputs per step: two blocks, four vectors of 16
// Rows per group: 2 quadruples. Measured on the TinyLlama down projection
// (W^T 5632 x 2048, 50% of rows active, 2 threads, alternating runs): 8 rows
// ~32-34 GB/s, 4 rows ~20 GB/s (too few rows in flight), 16 rows ~27-31.
// With the rows prefetched as one stream (kernels/group_prefetch.h), against
// 8 rows, alternating call by call (Q8_0, Q4_0; 1 and 2 threads): 16 rows
// 0.88-1.06x (50% and 80% of rows), 4 rows 0.89-1.02x (50-100%).
constexpr int kGroupQuads = 2;
// Several tokens: 8 tokens' accumulators over 512 columns are 16 KiB, so a
// tile's y stays in L1 while a group's 8 decoded row chunks serve 8 tokens.
// One token streams each row whole instead (one tile; y is <= 22 KiB for
// n_out <= 5632).
constexpr int64_t kTokenBlock = 8;
constexpr int64_t kTileColumns = 512;

uint64_t scale_bytes(int64_t n_out) { return (uint64_t(n_out / kQuantBlock) * 2 + 63) / 64 * 64; }
uint64_t quant_bytes(DType type, int64_t n_out) { return uint64_t(type == DType::Q8_0 ? n_out : n_out / 2); }

// Stored position of output o (0..63) in its chunk: o = 16k + 4L + m is
// stored at 16L + 4k + m (swapping k and L, so the mapping is its own inverse).
constexpr int chunk_position(int o) { return (o & 3) | ((o >> 4) & 3) << 2 | ((o >> 2) & 3) << 4; }

// Where chunk position p's weight sits in the file bytes of the chunk's two
// blocks (68 bytes for Q8_0, 36 for Q4_0): Q8_0 weight j of a block is byte
// 2 + j; Q4_0 weight j < 16 is the low nibble of byte 2 + j, j >= 16 the
// high nibble of byte 2 + j - 16.
struct ChunkSource {
  uint8_t byte[kChunk];
  uint8_t high[kChunk];  // Q4_0: the high nibble
};
ChunkSource chunk_source(DType type) {
  ChunkSource s{};
  const int block_bytes = int(dtype_row_bytes(type, kQuantBlock));
  for (int p = 0; p < kChunk; ++p) {
    const int o = chunk_position(p), j = o % kQuantBlock, base = o / kQuantBlock * block_bytes + 2;
    if (type == DType::Q8_0) {
      s.byte[p] = uint8_t(base + j);
    } else {
      s.byte[p] = uint8_t(base + j % 16);
      s.high[p] = j >= 16;
    }
  }
  return s;
}

// Rows [j0, j1) of the parts side by side (one part: the matrix itself)
// into the layout, row j at out + j * pitch. Several parts are joined per
// row in a small buffer, so the joined matrix never exists whole.
void pack_rows(std::initializer_list<const WeightMatrix*> parts, uint8_t* out, uint64_t pitch, int64_t j0,
               int64_t j1) {
  const DType type = (*parts.begin())->type;
  int64_t cols = 0;
  for (const WeightMatrix* p : parts) cols += p->cols;
  const int64_t nb = cols / kQuantBlock;
  const uint64_t sb = scale_bytes(cols);
  std::vector<uint8_t> joined(parts.size() > 1 ? dtype_row_bytes(type, uint64_t(cols)) : 0);
  const int64_t block_bytes = int64_t(dtype_row_bytes(type, kQuantBlock));
  const ChunkSource from = chunk_source(type);
  for (int64_t j = j0; j < j1; ++j) {
    const uint8_t* src = (*parts.begin())->row(j);
    if (parts.size() > 1) {
      uint8_t* at = joined.data();
      for (const WeightMatrix* p : parts) {
        std::memcpy(at, p->row(j), p->row_bytes());
        at += p->row_bytes();
      }
      src = joined.data();
    }
    uint8_t* row = out + uint64_t(j) * pitch;
    std::memset(row, 0, sb);
    for (int64_t b = 0; b < nb; ++b) std::memcpy(row + 2 * b, src + b * block_bytes, 2);  // d leads each block
    // Stored values w + zero: Q8_0 int8 w -> w + 128 is w XOR 0x80; Q4_0's
    // nibbles are already w + 8.
    uint8_t* q = row + sb;
    for (int64_t c = 0; c < cols; c += kChunk) {
      const uint8_t* blocks = src + (c / kQuantBlock) * block_bytes;
      if (type == DType::Q8_0) {
        for (int p = 0; p < kChunk; ++p) q[c + p] = blocks[from.byte[p]] ^ 0x80;
      } else {
        auto nibble = [&](int p) { return (from.high[p] ? blocks[from.byte[p]] >> 4 : blocks[from.byte[p]]) & 0x0f; };
        uint8_t* chunk = q + c / 2;
        for (int i = 0; i < kChunk / 2; ++i) chunk[i] = uint8_t(nibble(i) | nibble(i + kChunk / 2) << 4);
      }
    }
  }
}

template <DType T, bool kVnni, int Q>
FFN_VNNI_TARGET void columns(const WeightMatrix& wt, const float* x, int64_t x_stride, int64_t n_tok,
                             const int32_t* active, int64_t n_active, float* y, int64_t y_stride, int64_t c0,
                             int64_t c1) {
  constexpr int R = 4 * Q;
  const int64_t stride = int64_t(sparse_input_row_stride(T, wt.cols)), first = int64_t(scale_bytes(wt.cols));
  const uint64_t pitch = sparse_input_row_pitch(wt);
  const bool one = n_tok == 1;
  // One token reads each row once, whole, so its rows are prefetched
  // (kernels/group_prefetch.h) `ahead` groups before they are used. Several
  // tokens reuse each row's tile for a block of tokens and re-read the rows
  // tile by tile: the hardware prefetchers follow that.
  const int64_t ahead = one ? prefetch_groups(R * stride) : 0;
  const int64_t tile = one ? c1 - c0 : kTileColumns, token_block = one ? 1 : kTokenBlock;
  const int64_t nbp_max = (tile / kQuantBlock + 15) / 16 * 16;
  thread_local AlignedVector<int32_t> act;
  thread_local AlignedVector<float> scale, bias;
  act.resize(size_t(Q * token_block * nbp_max));
  scale.resize(size_t(token_block * nbp_max));
  bias.resize(size_t(token_block * nbp_max));
  auto row_start = [&](int64_t k) {
    return wt.packed + uint64_t(active[std::min(k, n_active - 1)]) * pitch;
  };
  // The starts of the group of rows k .. k + R - 1 (the last row repeated
  // past the list's end: padding rows, x = 0).
  auto group_rows = [&](int64_t k, const uint8_t** rows) {
    for (int r = 0; r < R; ++r) rows[r] = row_start(k + r);
  };
  auto start_group = [&](GroupPrefetch<R>& p, int64_t k) {
    const uint8_t* rows[R];
    group_rows(k, rows);
    p.start(rows, stride);
  };
  prefetch_first_groups<R>(ahead, 0, n_active, start_group);
  GroupPrefetch<R> later(one ? kernel_prefetch_pattern() : PrefetchPattern::kGroupStream);
  for (int64_t t0 = 0; t0 < n_tok; t0 += token_block) {
    const int64_t tokens = std::min(token_block, n_tok - t0);
    float* yb = y + t0 * y_stride;
    for (int64_t ct = c0; ct < c1; ct += tile) {
      const int64_t width = std::min(tile, c1 - ct), nb = width / kQuantBlock, nbp = (nb + 15) / 16 * 16;
      for (int64_t t = 0; t < tokens; ++t) std::fill(yb + t * y_stride + ct, yb + t * y_stride + ct + width, 0.0f);
      std::fill(bias.begin(), bias.begin() + tokens * nbp, 0.0f);
      for (int64_t k = 0; k < n_active; k += R) {
        const uint8_t *start[R], *w[R];
        const uint16_t* scales[R];
        group_rows(k, start);
        for (int r = 0; r < R; ++r) {
          scales[r] = reinterpret_cast<const uint16_t*>(start[r]) + ct / kQuantBlock;
          w[r] = start[r] + first + relaid::chunk_offset<T>(ct);
        }
        if (ahead > 0 && k + ahead * R < n_active) start_group(later, k + ahead * R);
        else later.stop();
        const int valid = int(std::min<int64_t>(R, n_active - k));
        relaid::prepare_group<Q, ByteDot<T, kVnni>::kZero>(scales, x + t0 * x_stride + k, x_stride, valid, tokens,
                                                           nb, nbp, act.data(), scale.data(), bias.data());
        relaid::group_tile<T, kVnni, Q>(w, later, later.share(width / kChunk), width, tokens, act.data(),
                                        scale.data(), nbp, yb + ct, y_stride);
      }
      // The zero point's term, one value per block of 32 outputs.
      for (int64_t t = 0; t < tokens; ++t)
        relaid::add_block_terms(bias.data() + t * nbp, width, yb + t * y_stride + ct);
    }
  }
}

}  // namespace

uint64_t sparse_input_row_stride(DType type, int64_t n_out) { return scale_bytes(n_out) + quant_bytes(type, n_out); }
uint64_t sparse_input_scale_bytes(int64_t n_out) { return scale_bytes(n_out); }
uint64_t sparse_input_row_pitch(const WeightMatrix& wt) {
  return wt.row_pitch ? wt.row_pitch : sparse_input_row_stride(wt.type, wt.cols);
}

namespace {

// Rows for wt's layout, placed as asked; wt.packed and its owner point at
// them (row_pitch set where rows are not back to back).
uint8_t* placed_rows_for(WeightMatrix& wt, RowPlacement placement) {
  const uint64_t stride = sparse_input_row_stride(wt.type, wt.cols);
  PlacedRows placed = place_rows(wt.rows, stride, placement);
  uint8_t* first = placed.first.get();
  wt.row_pitch = placed.pitch == stride ? 0 : placed.pitch;
  wt.packed = first;
  wt.packed_owned = std::move(placed.first);
  return first;
}

}  // namespace

bool can_pack_sparse_input(const WeightMatrix& wt) {
  return (wt.type == DType::Q8_0 || wt.type == DType::Q4_0) && wt.data != nullptr && wt.rows > 0 && wt.cols > 0 &&
         wt.cols % kChunk == 0 && cpu_has_avx512bw();
}

WeightMatrix packed_for_sparse_input(std::initializer_list<const WeightMatrix*> parts, ThreadPool* pool,
                                     RowPlacement placement) {
  if (parts.size() == 0) throw std::invalid_argument("packed_for_sparse_input: no parts");
  const WeightMatrix& first = **parts.begin();
  WeightMatrix wt{.type = first.type, .rows = first.rows, .cols = 0};
  bool packable = true;
  for (const WeightMatrix* p : parts) {
    wt.cols += p->cols;
    packable = packable && can_pack_sparse_input(*p) && p->rows == first.rows && p->type == first.type;
  }
  if (!packable) return parts.size() == 1 ? first : concat_columns(parts);
  uint8_t* rows = placed_rows_for(wt, placement);
  const uint64_t pitch = sparse_input_row_pitch(wt);
  if (pool) pool->parallel_for(wt.rows, [&](int64_t b, int64_t e, int) { pack_rows(parts, rows, pitch, b, e); });
  else pack_rows(parts, rows, pitch, 0, wt.rows);
  for (const WeightMatrix* p : parts)
    if (!p->owned) release_mapped_pages(p->data, p->bytes());
  return wt;
}

WeightMatrix packed_for_sparse_input(WeightMatrix wt, ThreadPool* pool, RowPlacement placement) {
  if (!can_pack_sparse_input(wt)) return wt;
  WeightMatrix out{.type = wt.type, .rows = wt.rows, .cols = wt.cols};
  uint8_t* rows = placed_rows_for(out, placement);
  const uint64_t pitch = sparse_input_row_pitch(out);
  if (pool) pool->parallel_for(wt.rows, [&](int64_t b, int64_t e, int) { pack_rows({&wt}, rows, pitch, b, e); });
  else pack_rows({&wt}, rows, pitch, 0, wt.rows);
  if (!wt.owned) release_mapped_pages(wt.data, wt.bytes());
  return out;
}

bool can_pack_transposed_for_sparse_input(std::initializer_list<const WeightMatrix*> parts) {
  if (parts.size() == 0) return false;
  const WeightMatrix& first = **parts.begin();
  for (const WeightMatrix* p : parts)
    if ((p->type != DType::Q8_0 && p->type != DType::Q4_0) || p->type != first.type || p->data == nullptr ||
        p->cols != first.cols || p->cols <= 0 || p->rows <= 0 || p->rows % kChunk != 0)
      return false;
  return cpu_has_avx512bw();
}

WeightMatrix packed_transposed_for_sparse_input(std::initializer_list<const WeightMatrix*> parts, ThreadPool* pool,
                                                RowPlacement placement) {
  if (!can_pack_transposed_for_sparse_input(parts))
    throw std::invalid_argument("packed_transposed_for_sparse_input: parts cannot take the layout");
  const WeightMatrix& first = **parts.begin();
  WeightMatrix wt{.type = first.type, .rows = first.cols, .cols = 0};
  for (const WeightMatrix* p : parts) wt.cols += p->rows;
  uint8_t* placed = placed_rows_for(wt, placement);
  const uint64_t pitch = sparse_input_row_pitch(wt);
  // A panel of columns of every part: decoded as rows of each W^T, each row
  // encoded into its part's blocks of one joined row, which is re-laid.
  const int64_t n_panels = (first.cols + kTransposePanel - 1) / kTransposePanel;
  auto panels = [&](int64_t p0, int64_t p1) {
    std::vector<std::vector<float>> rows;
    for (const WeightMatrix* p : parts) rows.emplace_back(static_cast<size_t>(kTransposePanel * p->rows));
    std::vector<uint8_t> joined(dtype_row_bytes(wt.type, uint64_t(wt.cols)));
    const WeightMatrix one{.type = wt.type, .rows = 1, .cols = wt.cols, .data = joined.data()};
    for (int64_t panel = p0; panel < p1; ++panel) {
      const int64_t c0 = panel * kTransposePanel, n = std::min(kTransposePanel, first.cols - c0);
      size_t i = 0;
      for (const WeightMatrix* p : parts) transposed_columns(*p, c0, n, rows[i++].data());
      for (int64_t j = 0; j < n; ++j) {
        uint8_t* at = joined.data();
        i = 0;
        for (const WeightMatrix* p : parts) {
          encode_row(wt.type, rows[i++].data() + j * p->rows, at, uint64_t(p->rows));
          at += dtype_row_bytes(wt.type, uint64_t(p->rows));
        }
        pack_rows({&one}, placed + uint64_t(c0 + j) * pitch, pitch, 0, 1);
      }
    }
  };
  if (pool) pool->parallel_for(n_panels, [&](int64_t b, int64_t e, int) { panels(b, e); });
  else panels(0, n_panels);
  for (const WeightMatrix* p : parts)
    if (!p->owned) release_mapped_pages(p->data, p->bytes());
  return wt;
}

void sparse_input_q8_columns(const WeightMatrix& wt, const float* x, int64_t x_stride, int64_t n_tok,
                             const int32_t* active, int64_t n_active, float* y, int64_t y_stride, int64_t c0,
                             int64_t c1, QuantPath path) {
  const bool vnni = path == QuantPath::Vnni || (path == QuantPath::Auto && cpu_has_vnni());
  auto run = [&](auto type_tag, auto vnni_tag) {
    columns<decltype(type_tag)::value, decltype(vnni_tag)::value, kGroupQuads>(wt, x, x_stride, n_tok, active,
                                                                              n_active, y, y_stride, c0, c1);
  };
  with_relaid_kernel(wt.type, vnni, run);
}

}  // namespace ffn

FFN_INTRINSICS_WARNINGS_ON
