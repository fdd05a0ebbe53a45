// silu_mul and silu (kernels/ops.h) with Google Highway: the exp runs in vector
// registers (hwy/contrib/math). As a plain loop the compiler keeps one
// libm expf call per element, which took ~2% of a TinyLlama Q4_0 decode
// step on the calling thread while the other thread waited.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/silu_mul.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/contrib/math/math-inl.h"

#include <algorithm>
#include <cmath>

#include "kernels/ops.h"

HWY_BEFORE_NAMESPACE();
namespace ffn {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// out[i] = silu(g[i]) * up[i], or silu(g[i]) when up is null (out may be g).
void SiluMulInto(const float* g_in, const float* HWY_RESTRICT up, float* out, int64_t n) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  // exp(-g) for g < -88 overflows fp32; clamped there, g / (1 + e^88) is
  // already below the smallest normal float, as the exact value is.
  const auto one = hn::Set(d, 1.0f), limit = hn::Set(d, 88.0f);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto g = hn::LoadU(d, g_in + i);
    const auto e = hn::Exp(d, hn::Min(hn::Neg(g), limit));
    const auto s = hn::Div(g, hn::Add(one, e));
    hn::StoreU(up ? hn::Mul(s, hn::LoadU(d, up + i)) : s, d, out + i);
  }
  for (; i < n; ++i) {
    const float g = g_in[i];
    out[i] = g / (1.0f + std::exp(std::min(-g, 88.0f))) * (up ? up[i] : 1.0f);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace ffn
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace ffn {

HWY_EXPORT(SiluMulInto);

void silu_mul(float* gate, const float* up, int64_t n) { HWY_DYNAMIC_DISPATCH(SiluMulInto)(gate, up, gate, n); }

void silu_mul_into(const float* gate, const float* up, float* out, int64_t n) {
  HWY_DYNAMIC_DISPATCH(SiluMulInto)(gate, up, out, n);
}

void silu(const float* g, float* out, int64_t n) { HWY_DYNAMIC_DISPATCH(SiluMulInto)(g, nullptr, out, n); }

}  // namespace ffn
#endif  // HWY_ONCE
