// Highway helpers shared by the kernels that widen Q8_0/Q4_0 blocks to fp32
// in registers (sparse_matmul.cpp, matmul_quant_portable.cpp): the vector
// tag, one block's 32 weights without its scale, and the scale broadcast.
// Included inside each kernel's HWY_NAMESPACE, once per compiled target
// (Highway's per-target include guard idiom).
#if defined(FFN_KERNELS_QUANT_BLOCK_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef FFN_KERNELS_QUANT_BLOCK_INL_H_
#undef FFN_KERNELS_QUANT_BLOCK_INL_H_
#else
#define FFN_KERNELS_QUANT_BLOCK_INL_H_
#endif

#include "hwy/highway.h"
#include "kernels/quant_blocks.h"

HWY_BEFORE_NAMESPACE();
namespace ffn {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// At most 16 lanes: a Q4_0 block's 16 bytes of nibbles decode as (up to) 16
// low and 16 high lanes. (Every x86 target has <= 16 fp32 lanes anyway.)
using D = hn::CappedTag<float, 16>;
using V = hn::Vec<D>;
constexpr int64_t kLanes = static_cast<int64_t>(hn::MaxLanes(D()));
constexpr int kBlockVecs = kQuantBlock / static_cast<int>(kLanes);  // vectors per 32-block

// The 32 weights of a block without its scale, as kBlockVecs vectors.
HWY_INLINE void DecodeBlock(D d, const BlockQ8_0* HWY_RESTRICT b, V* out) {
  const hn::Rebind<int32_t, D> di;
  const hn::Rebind<int8_t, D> d8;
  for (int j = 0; j < kBlockVecs; ++j) out[j] = hn::ConvertTo(d, hn::PromoteTo(di, hn::LoadU(d8, b->qs + j * kLanes)));
}
// Q4_0 nibble n decodes to n - 8.
alignas(64) constexpr float kNibbleValues[16] = {-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7};
HWY_INLINE void DecodeBlock(D d, const BlockQ4_0* HWY_RESTRICT b, V* out) {
  // Byte j: weight j in the low nibble, weight j + 16 in the high nibble.
  const hn::Rebind<int32_t, D> di;
  const hn::Rebind<uint32_t, D> du;
  const hn::Rebind<uint8_t, D> d8;
  const auto low = hn::Set(di, 0x0f);
  if constexpr (kLanes == 16) {
    // One lane per byte: a 16-entry table lookup (one permute) replaces the
    // subtract and the int -> float conversion.
    const V table = hn::Load(d, kNibbleValues);
    const auto q = hn::BitCast(di, hn::PromoteTo(du, hn::LoadU(d8, b->qs)));
    out[0] = hn::TableLookupLanes(table, hn::IndicesFromVec(d, hn::And(q, low)));
    out[1] = hn::TableLookupLanes(table, hn::IndicesFromVec(d, hn::ShiftRight<4>(q)));
  } else {
    const auto eight = hn::Set(di, 8);
    for (int j = 0; j < kBlockVecs / 2; ++j) {
      const auto q = hn::BitCast(di, hn::PromoteTo(du, hn::LoadU(d8, b->qs + j * kLanes)));
      out[j] = hn::ConvertTo(d, hn::Sub(hn::And(q, low), eight));
      out[j + kBlockVecs / 2] = hn::ConvertTo(d, hn::Sub(hn::ShiftRight<4>(q), eight));
    }
  }
}

// The block's fp16 scale, broadcast to every lane.
template <typename Block>
HWY_INLINE V BlockScale(D d, const Block* HWY_RESTRICT b) {
  const hn::Rebind<uint16_t, D> d16;
  return hn::PromoteTo(d, hn::BitCast(hn::Rebind<hwy::float16_t, D>(), hn::Set(d16, b->d)));
}

}  // namespace HWY_NAMESPACE
}  // namespace ffn
HWY_AFTER_NAMESPACE();

#endif  // FFN_KERNELS_QUANT_BLOCK_INL_H_
