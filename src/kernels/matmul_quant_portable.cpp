// The portable path of matmul_quant (kernels/matmul_quant.h): Q8_0 / Q4_0
// weights times fp32 activations with Google Highway, for CPUs without
// AVX-512 VNNI (e.g. Skylake-X: AVX-512F/BW only; every AVX2 CPU).
//
// Why fused: decoding a row to fp32 first (dequantize_row, scalar) and then
// running the fp32 kernel over it spent ~20 instructions per weight byte:
// on a 2.0 GHz Skylake-X, TinyLlama Q4_0 decoded at 5% of the memory
// bandwidth and Q8_0 at 16%. Here each weight vector is widened in
// registers (int8 or nibble -> int32 -> fp32), scaled by its block's d and
// multiplied into the activations at once: ~4 vector instructions per 16
// weights, so one token streams the weights at the memory's rate.
//
// Several tokens share each widened weight vector (tiles of NT tokens x NR
// rows, as the fp32 kernels in matmul.cpp). Activations stay fp32: no
// rounding of x, unlike the VNNI path's int8 blocks.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/matmul_quant_portable.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#include <algorithm>

#include "kernels/matmul_quant.h"
#include "kernels/quant_blocks.h"

HWY_BEFORE_NAMESPACE();
namespace ffn {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// At most 16 fp32 lanes, so a vector never straddles a block of 32 weights
// (every x86 target; wider scalable vectors are capped).
using DQ = hn::CappedTag<float, 16>;
using VQ = hn::Vec<DQ>;

// Weights j .. j + Lanes - 1 of one block as fp32 integers (before the
// block's scale): Q8_0's int8, Q4_0's nibble - 8.
HWY_INLINE VQ BlockWeights(DQ d, const BlockQ8_0* blk, int j) {
  const hn::RebindToSigned<DQ> di;
  const hn::Rebind<int8_t, DQ> d8;
  return hn::ConvertTo(d, hn::PromoteTo(di, hn::LoadU(d8, blk->qs + j)));
}
HWY_INLINE VQ BlockWeights(DQ d, const BlockQ4_0* blk, int j) {
  const hn::RebindToSigned<DQ> di;
  const hn::Rebind<uint8_t, DQ> d8;
  // Weight j < 16 is the low nibble of byte j, weight j >= 16 the high
  // nibble of byte j - 16.
  const auto bytes = hn::PromoteTo(di, hn::LoadU(d8, blk->qs + (j & 15)));
  const auto nibble = j < 16 ? hn::And(bytes, hn::Set(di, 0x0f)) : hn::ShiftRight<4>(bytes);
  return hn::ConvertTo(d, hn::Sub(nibble, hn::Set(di, 8)));
}

// A block's fp16 scale d in every lane: one broadcast and one conversion
// (vcvtph2ps where the target has F16C; the scalar bit decoding cost ~14
// instructions per block, half of the Q4_0 loop).
HWY_INLINE VQ BlockScale(DQ d, uint16_t bits) {
  const hn::Rebind<hwy::float16_t, DQ> dh;
  return hn::PromoteTo(d, hn::BitCast(dh, hn::Set(hn::RebindToUnsigned<decltype(dh)>(), bits)));
}

// NT tokens x NR rows (w[r]: row r's blocks): y[t * y_stride + r] for r <
// n_rows. Each block's products are summed unscaled and then added with
// the block's scale: one multiply per block instead of one per vector.
template <int NT, int NR, typename Block>
void QuantTile(const float* HWY_RESTRICT x, int64_t n_in, const Block* const* w, float* HWY_RESTRICT y,
               int64_t y_stride, int64_t n_rows) {
  const DQ d;
  const int N = int(hn::Lanes(d));
  VQ acc[NT][NR];
  for (int t = 0; t < NT; ++t)
    for (int r = 0; r < NR; ++r) acc[t][r] = hn::Zero(d);
  const int64_t nb = n_in / kQuantBlock;
  for (int64_t b = 0; b < nb; ++b) {
    VQ part[NT][NR];
    for (int t = 0; t < NT; ++t)
      for (int r = 0; r < NR; ++r) part[t][r] = hn::Zero(d);
    for (int j = 0; j < kQuantBlock; j += N) {
      VQ wv[NR];
      for (int r = 0; r < NR; ++r) wv[r] = BlockWeights(d, &w[r][b], j);
      for (int t = 0; t < NT; ++t) {
        const VQ xv = hn::LoadU(d, x + t * n_in + b * kQuantBlock + j);
        for (int r = 0; r < NR; ++r) part[t][r] = hn::MulAdd(xv, wv[r], part[t][r]);
      }
    }
    for (int r = 0; r < NR; ++r) {
      const VQ scale = BlockScale(d, w[r][b].d);
      for (int t = 0; t < NT; ++t) acc[t][r] = hn::MulAdd(part[t][r], scale, acc[t][r]);
    }
  }
  for (int t = 0; t < NT; ++t)
    for (int r = 0; r < NR && r < n_rows; ++r) y[t * y_stride + r] = hn::GetLane(hn::SumOfLanes(d, acc[t][r]));
}

// Rows [r0, r1) of w for all tokens. One token: one row at a time, so the
// weights stream in order; several: 4 tokens x 4 rows per tile over blocks
// of rows that stay in L2 while every token group passes over them.
template <typename Block>
void QuantRows(const float* x, int64_t n_tok, int64_t n_in, const Block* w, float* y, int64_t y_stride,
               int64_t r0, int64_t r1) {
  const int64_t nb = n_in / kQuantBlock;
  const int64_t row_bytes = nb * int64_t(sizeof(Block));
  const int64_t rows_per_block = n_tok == 1 ? r1 - r0 : std::max<int64_t>(4, (128 * 1024) / row_bytes / 4 * 4);
  for (int64_t rb = r0; rb < r1; rb += rows_per_block) {
    const int64_t re = std::min(r1, rb + rows_per_block);
    int64_t t = 0;
    for (; t + 4 <= n_tok; t += 4) {
      for (int64_t r = rb; r < re; r += 4) {
        const Block* rows[4];
        for (int k = 0; k < 4; ++k) rows[k] = w + std::min(r + k, re - 1) * nb;
        QuantTile<4, 4>(x + t * n_in, n_in, rows, y + t * y_stride + r, y_stride, std::min<int64_t>(4, re - r));
      }
    }
    for (; t < n_tok; ++t)
      for (int64_t r = rb; r < re; ++r) {
        const Block* row[1] = {w + r * nb};
        QuantTile<1, 1>(x + t * n_in, n_in, row, y + t * y_stride + r, y_stride, 1);
      }
  }
}

void QuantRowsPortable(DType type, const float* x, int64_t n_tok, int64_t n_in, const uint8_t* w, float* y,
                       int64_t y_stride, int64_t r0, int64_t r1) {
  if (type == DType::Q8_0)
    QuantRows(x, n_tok, n_in, reinterpret_cast<const BlockQ8_0*>(w), y, y_stride, r0, r1);
  else
    QuantRows(x, n_tok, n_in, reinterpret_cast<const BlockQ4_0*>(w), y, y_stride, r0, r1);
}

}  // namespace HWY_NAMESPACE
}  // namespace ffn
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace ffn {

HWY_EXPORT(QuantRowsPortable);

void matmul_quant_rows_portable(DType type, const float* x, int64_t n_tok, int64_t n_in, const uint8_t* w, float* y,
                                int64_t y_stride, int64_t r0, int64_t r1) {
  HWY_DYNAMIC_DISPATCH(QuantRowsPortable)(type, x, n_tok, n_in, w, y, y_stride, r0, r1);
}

}  // namespace ffn
#endif
