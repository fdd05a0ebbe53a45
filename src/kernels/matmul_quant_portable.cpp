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
#include "kernels/quant_block-inl.h"

#include <algorithm>

#include "kernels/matmul_quant.h"
#include "kernels/quant_blocks.h"

HWY_BEFORE_NAMESPACE();
namespace ffn {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// NT tokens x NR rows (w[r]: row r's blocks): y[t * y_stride + r] for r <
// n_rows. Each block's products are summed unscaled and then added with
// the block's scale: one multiply per block instead of one per vector.
template <int NT, int NR, typename Block>
void QuantTile(const float* HWY_RESTRICT x, int64_t n_in, const Block* const* w, float* HWY_RESTRICT y,
               int64_t y_stride, int64_t n_rows) {
  const D d;
  V acc[NT][NR];
  for (int t = 0; t < NT; ++t)
    for (int r = 0; r < NR; ++r) acc[t][r] = hn::Zero(d);
  const int64_t nb = n_in / kQuantBlock;
  for (int64_t b = 0; b < nb; ++b) {
    V wv[NR][kBlockVecs];
    for (int r = 0; r < NR; ++r) DecodeBlock(d, w[r] + b, wv[r]);
    V part[NT][NR];
    for (int t = 0; t < NT; ++t)
      for (int r = 0; r < NR; ++r) part[t][r] = hn::Zero(d);
    for (int v = 0; v < kBlockVecs; ++v)
      for (int t = 0; t < NT; ++t) {
        const V xv = hn::LoadU(d, x + t * n_in + b * kQuantBlock + v * kLanes);
        for (int r = 0; r < NR; ++r) part[t][r] = hn::MulAdd(xv, wv[r][v], part[t][r]);
      }
    for (int r = 0; r < NR; ++r) {
      const V scale = BlockScale(d, w[r] + b);
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
