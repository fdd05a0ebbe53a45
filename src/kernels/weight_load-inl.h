// Highway helpers shared by the fp32/fp16/bf16 kernels (matmul.cpp,
// sparse_matmul.cpp): one weight vector or value widened to fp32. Included
// inside each kernel's HWY_NAMESPACE, once per compiled target (Highway's
// per-target include guard idiom).
#if defined(FFN_KERNELS_WEIGHT_LOAD_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef FFN_KERNELS_WEIGHT_LOAD_INL_H_
#undef FFN_KERNELS_WEIGHT_LOAD_INL_H_
#else
#define FFN_KERNELS_WEIGHT_LOAD_INL_H_
#endif

#include <cstring>

#include "core/half.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace ffn {
namespace HWY_NAMESPACE {

// Lanes(d) weights starting at p, as fp32 lanes of tag d.
template <class D>
HWY_INLINE hwy::HWY_NAMESPACE::Vec<D> LoadWeights(D d, const float* HWY_RESTRICT p) {
  return hwy::HWY_NAMESPACE::LoadU(d, p);
}
template <class D>
HWY_INLINE hwy::HWY_NAMESPACE::Vec<D> LoadWeights(D d, const hwy::bfloat16_t* HWY_RESTRICT p) {
  return hwy::HWY_NAMESPACE::PromoteTo(d, hwy::HWY_NAMESPACE::LoadU(hwy::HWY_NAMESPACE::Rebind<hwy::bfloat16_t, D>(), p));
}
template <class D>
HWY_INLINE hwy::HWY_NAMESPACE::Vec<D> LoadWeights(D d, const hwy::float16_t* HWY_RESTRICT p) {
  return hwy::HWY_NAMESPACE::PromoteTo(d, hwy::HWY_NAMESPACE::LoadU(hwy::HWY_NAMESPACE::Rebind<hwy::float16_t, D>(), p));
}

HWY_INLINE float WeightToFloat(float w) { return w; }
HWY_INLINE float WeightToFloat(hwy::bfloat16_t w) { return hwy::F32FromBF16(w); }
HWY_INLINE float WeightToFloat(hwy::float16_t w) {
  uint16_t bits;
  std::memcpy(&bits, &w, 2);
  return f16_to_f32(bits);
}

}  // namespace HWY_NAMESPACE
}  // namespace ffn
HWY_AFTER_NAMESPACE();

#endif  // FFN_KERNELS_WEIGHT_LOAD_INL_H_
