#include "kernels/packed_quant.h"

#include <immintrin.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>

#include "core/aligned_buffer.h"
#include "core/mapped_file.h"
#include "core/thread_pool.h"
#include "kernels/amx_packed.h"
#include "kernels/byte_dot.h"
#include "kernels/intrinsics_warnings.h"
#include "kernels/matmul_quant.h"
#include "kernels/packed_bf16.h"
#include "kernels/quant_blocks.h"

namespace ffn {

namespace {

// Per-type facts of the packed layout: quant bytes per row per block and
// how a file block's quant bytes become packed bytes (unsigned, w + the
// zero point of kernels/byte_dot.h).
template <DType T>
struct PackedType;
template <>
struct PackedType<DType::Q8_0> {
  using Block = BlockQ8_0;
  static constexpr int64_t kQuantBytes = 32;
  static uint8_t packed_byte(uint8_t q) { return q ^ 0x80; }  // int8 w -> w + 128
};
template <>
struct PackedType<DType::Q4_0> {
  using Block = BlockQ4_0;
  static constexpr int64_t kQuantBytes = 16;
  static uint8_t packed_byte(uint8_t q) { return q; }  // nibbles are already w + 8
};

template <DType T>
constexpr int64_t tile_block_bytes() {
  static_assert(packed_block_bytes(T) == kPackedScaleBytes + kPackRows * PackedType<T>::kQuantBytes);
  return packed_block_bytes(T);
}

// Tiles [i0, i1) of w into `out` (the packed buffer's start), 4 bytes at a
// time: byte group k of row r goes to vector k, slot r.
template <DType T>
void pack_tiles(const WeightMatrix& w, uint8_t* out, int64_t i0, int64_t i1) {
  using P = PackedType<T>;
  constexpr int64_t kGroups = P::kQuantBytes / 4;
  // Q8_0: int8 w -> w + 128 is w XOR 0x80 in each byte; Q4_0's nibbles are
  // already w + 8.
  constexpr uint32_t kFlip = T == DType::Q8_0 ? 0x80808080u : 0u;
  const int64_t nb = w.cols / kQuantBlock;
  for (int64_t i = i0; i < i1; ++i) {
    uint8_t* tile = out + uint64_t(i) * uint64_t(nb * tile_block_bytes<T>());
    const int64_t rows = std::min(kPackRows, w.rows - i * kPackRows);
    const auto* first = reinterpret_cast<const typename P::Block*>(w.row(i * kPackRows));
    const int64_t row_stride = nb;  // blocks
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* dst = tile + b * tile_block_bytes<T>();
      if (rows < kPackRows) std::memset(dst, 0, size_t(tile_block_bytes<T>()));  // padding rows: scale 0
      for (int64_t r = 0; r < rows; ++r) {
        const auto* blk = first + r * row_stride + b;
        std::memcpy(dst + 2 * r, &blk->d, 2);
        for (int64_t k = 0; k < kGroups; ++k) {
          uint32_t group;
          std::memcpy(&group, reinterpret_cast<const uint8_t*>(blk->qs) + 4 * k, 4);
          group ^= kFlip;
          std::memcpy(dst + kPackedScaleBytes + k * 64 + 4 * r, &group, 4);
        }
      }
    }
  }
}

FFN_INTRINSICS_WARNINGS_OFF
// NT tokens (t0..t0+NT) x one tile of 16 rows; `rows` of them are stored.
// For each block: s[t] = -z * sum(x) + sum over the 8 groups k of
// vpdpbusd(weights of group k, x's bytes 4k..4k+3 broadcast), the exact
// integer block dot of all 16 rows; then acc[t] += s[t] * d_w * d_x.
//
// kVnni = false: the same integer sums without VNNI (kernels/byte_dot.h).
template <DType T, int NT, bool kVnni>
FFN_VNNI_TARGET void tile_packed(const uint8_t* tile, int64_t nb, const QuantizedActivations& xa, int64_t t0,
                                 float* y, int64_t y_stride, int64_t rows, int64_t prefetch) {
  using Dot = ByteDot<T, kVnni>;
  __m512 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_ps();
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* p = tile + b * tile_block_bytes<T>();
    const uint8_t* qv = p + kPackedScaleBytes;
    if constexpr (NT == 1)  // (a prefetch past the buffer's end never faults)
      if (prefetch > 0)
        for (int64_t o = 0; o < tile_block_bytes<T>(); o += 64)
          _mm_prefetch(reinterpret_cast<const char*>(p + prefetch + o), _MM_HINT_T0);
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    const int8_t* xq[NT];
    __m512i s[NT];
    for (int t = 0; t < NT; ++t) {
      const int64_t xb = (t0 + t) * nb + b;
      xq[t] = xa.q.data() + xb * kQuantBlock;
      s[t] = _mm512_set1_epi32(-Dot::kZero * xa.sum[size_t(xb)]);
    }
    // s[t] += the 4-byte dot products of unsigned wk with x's bytes 4k..4k+3.
    auto group = [&](int k, __m512i wk) FFN_VNNI_TARGET {
      const typename Dot::Weights w = Dot::prepare(wk);
      for (int t = 0; t < NT; ++t) s[t] = Dot::accumulate_broadcast(s[t], w, xq[t] + 4 * k);
    };
    if constexpr (T == DType::Q8_0) {
      for (int k = 0; k < 8; ++k) group(k, _mm512_loadu_si512(qv + 64 * k));
    } else if constexpr (!kVnni) {
      // Q4_0 without VNNI: a block's 8 groups of int16 pair sums add up to
      // at most 8 * 2 * 15 * 127 = 30480 < 32767, so they are summed in
      // int16 and widened once per block (one vpmaddwd + vpaddd, not 8).
      __m512i pairs[NT];
      for (int t = 0; t < NT; ++t) pairs[t] = _mm512_setzero_si512();
      for (int k = 0; k < 4; ++k) {
        const __m512i v = _mm512_loadu_si512(qv + 64 * k);
        const __m512i lo = _mm512_and_si512(v, low4), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
        for (int t = 0; t < NT; ++t) {
          pairs[t] = _mm512_add_epi16(pairs[t], _mm512_maddubs_epi16(lo, broadcast4(xq[t] + 4 * k)));
          pairs[t] = _mm512_add_epi16(pairs[t], _mm512_maddubs_epi16(hi, broadcast4(xq[t] + 4 * (k + 4))));
        }
      }
      for (int t = 0; t < NT; ++t) s[t] = Dot::add_pairs(s[t], pairs[t]);
    } else {
      for (int k = 0; k < 4; ++k) {
        const __m512i v = _mm512_loadu_si512(qv + 64 * k);
        group(k, _mm512_and_si512(v, low4));
        group(k + 4, _mm512_and_si512(_mm512_srli_epi16(v, 4), low4));
      }
    }
    for (int t = 0; t < NT; ++t) {
      const __m512 scale = _mm512_mul_ps(dw, _mm512_set1_ps(xa.d[size_t((t0 + t) * nb + b)]));
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[t]), scale, acc[t]);
    }
  }
  const __mmask16 keep = rows >= kPackRows ? __mmask16(0xffff) : __mmask16((1u << rows) - 1);
  for (int t = 0; t < NT; ++t) _mm512_mask_storeu_ps(y + t * y_stride, keep, acc[t]);
}
FFN_INTRINSICS_WARNINGS_ON

// Rows [r0, r1) (r0 a tile start) for all tokens: each tile (<= ~100 KB, so
// it stays in L2) passes over every token group before the next tile.
template <DType T, bool kVnni>
void rows_packed(const WeightMatrix& w, const QuantizedActivations& xa, int64_t n_tok, float* y, int64_t y_stride,
                 int64_t r0, int64_t r1) {
  const int64_t nb = w.cols / kQuantBlock;
  const uint64_t tile_bytes = packed_tile_bytes(T, w.cols);
  const int64_t prefetch = packed_prefetch_bytes();
  for (int64_t r = r0; r < r1; r += kPackRows) {
    const uint8_t* tile = w.packed + uint64_t(r / kPackRows) * tile_bytes;
    const int64_t rows = std::min(kPackRows, r1 - r);
    int64_t t = 0;
    auto y_at = [&](int64_t t) { return y + t * y_stride + r; };
    for (; t + 8 <= n_tok; t += 8) tile_packed<T, 8, kVnni>(tile, nb, xa, t, y_at(t), y_stride, rows, 0);
    for (; t + 4 <= n_tok; t += 4) tile_packed<T, 4, kVnni>(tile, nb, xa, t, y_at(t), y_stride, rows, 0);
    for (; t < n_tok; ++t) tile_packed<T, 1, kVnni>(tile, nb, xa, t, y_at(t), y_stride, rows, prefetch);
  }
}

}  // namespace

// Memory for packed matrices: 64 MiB chunks in 2 MiB pages where the kernel
// allows (transparent huge pages on madvise), cut into 64-byte aligned
// pieces. One page fault per 2 MiB instead of per 4 KiB more than halves the
// load time of a 1 GB model, and sharing chunks keeps the small matrices
// (k, v: 0.3 MB) from each rounding a huge page up. A chunk is freed with
// the last matrix in it (shared_ptr aliasing; the chunk being filled stays
// until exit); larger matrices get their own.
std::shared_ptr<uint8_t> weight_allocation(uint64_t size) {
  constexpr uint64_t kHuge = 2ull << 20;
  // Below two huge pages, rounding up to whole ones would waste more than
  // the TLB saves.
  const uint64_t align = size >= 2 * kHuge ? kHuge : 64;
  const uint64_t bytes = (std::max<uint64_t>(size, 1) + align - 1) / align * align;
  std::shared_ptr<uint8_t> p(static_cast<uint8_t*>(std::aligned_alloc(align, bytes)), std::free);
  if (!p) throw std::bad_alloc();
  if (align == kHuge) ::madvise(p.get(), bytes, MADV_HUGEPAGE);  // advice: failure only costs speed
  return p;
}

std::shared_ptr<uint8_t> packed_weight_buffer(uint64_t size) {
  constexpr uint64_t kChunk = 64ull << 20;
  size = (size + 63) / 64 * 64;
  if (size > kChunk / 4) return weight_allocation(size);
  static std::mutex mutex;
  static std::shared_ptr<uint8_t> chunk;
  static uint64_t used = kChunk;
  const std::lock_guard<std::mutex> lock(mutex);
  if (used + size > kChunk) {
    chunk = weight_allocation(kChunk);
    used = 0;
  }
  std::shared_ptr<uint8_t> piece(chunk, chunk.get() + used);
  used += size;
  return piece;
}

namespace {
std::atomic<int64_t> prefetch_override{-1};
}  // namespace

int64_t packed_prefetch_bytes() {
  const int64_t forced = prefetch_override.load(std::memory_order_relaxed);
  if (forced >= 0) return forced;
  // (Measurements: packed_quant.h.) Decided once: __builtin_cpu_is reads
  // the CPUID data the runtime caches at start-up.
  static const bool amd = __builtin_cpu_is("amd");
  return amd ? 0 : 2048;
}

void override_packed_prefetch_bytes(int64_t bytes) { prefetch_override.store(bytes, std::memory_order_relaxed); }

uint64_t packed_tile_bytes(DType type, int64_t cols) {
  if (type == DType::BF16 || type == DType::F16) return packed_bf16_tile_bytes(cols);
  const uint64_t nb = uint64_t(cols / kQuantBlock);
  return nb * uint64_t(type == DType::Q8_0 ? tile_block_bytes<DType::Q8_0>() : tile_block_bytes<DType::Q4_0>());
}

bool can_pack(const WeightMatrix& w) {
  if (w.data == nullptr || w.rows <= 0) return false;
  if (w.type == DType::Q8_0 || w.type == DType::Q4_0) return cpu_has_avx512bw();
  // (F16 shares BF16's tile loop, compiled for AVX-512 BF16.)
  if (w.type == DType::BF16 || w.type == DType::F16) return w.cols % 32 == 0 && cpu_has_avx512_bf16();
  return false;
}

void pack_row_tiles(WeightMatrix& w, ThreadPool* pool) {
  if (!can_pack(w) || w.packed) return;
  const int64_t tiles = (w.rows + kPackRows - 1) / kPackRows;
  const std::shared_ptr<uint8_t> buf = packed_weight_buffer(uint64_t(tiles) * packed_tile_bytes(w.type, w.cols));
  auto run = [&](int64_t i0, int64_t i1) {
    if (w.type == DType::Q8_0) pack_tiles<DType::Q8_0>(w, buf.get(), i0, i1);
    else if (w.type == DType::Q4_0) pack_tiles<DType::Q4_0>(w, buf.get(), i0, i1);
    else pack_bf16_tiles(w, buf.get(), i0, i1);
  };
  if (pool) pool->parallel_for(tiles, [&](int64_t b, int64_t e, int) { run(b, e); });
  else run(0, tiles);
  release_mapped_pages(w.data, w.bytes());
  w.packed = buf.get();
  w.packed_owned = std::move(buf);
}

WeightMatrix without_packed(WeightMatrix w) {
  w.packed = nullptr;
  w.packed_owned.reset();
  return w;
}

void matmul_packed_rows(const WeightMatrix& w, const QuantizedActivations& xa, int64_t n_tok, float* y,
                        int64_t y_stride, int64_t r0, int64_t r1, QuantPath path) {
  if (r0 >= r1) return;
  if (w.type == DType::F16)
    throw std::logic_error("matmul_packed_rows: F16 tiles read fp32 activations (matmul_packed_f16_rows)");
  if (path == QuantPath::Amx && !amx_rows_active())
    throw std::logic_error("matmul_packed_rows: QuantPath::Amx, but this process does not use AMX tiles (" +
                           amx_support().reason + ")");
  if (path == QuantPath::Amx || (path == QuantPath::Auto && n_tok >= amx_min_tokens(w.type) && amx_rows_active())) {
    matmul_packed_rows_amx(w, xa, n_tok, y, y_stride, r0, r1);
    return;
  }
  const bool vnni = path == QuantPath::Vnni || (path == QuantPath::Auto && cpu_has_vnni());
  if (w.type == DType::Q8_0 && vnni) rows_packed<DType::Q8_0, true>(w, xa, n_tok, y, y_stride, r0, r1);
  else if (w.type == DType::Q8_0) rows_packed<DType::Q8_0, false>(w, xa, n_tok, y, y_stride, r0, r1);
  else if (w.type == DType::Q4_0 && vnni) rows_packed<DType::Q4_0, true>(w, xa, n_tok, y, y_stride, r0, r1);
  else if (w.type == DType::Q4_0) rows_packed<DType::Q4_0, false>(w, xa, n_tok, y, y_stride, r0, r1);
  else matmul_packed_bf16_rows(w, xa.bf16.data(), n_tok, y, y_stride, r0, r1);
}

}  // namespace ffn
