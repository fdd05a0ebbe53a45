// Activation masks (kernels/activation_mask.h) with Google Highway: one
// compare per vector of channels decides a token's kept entries; the union
// is an OR of those masks; packing is a compress-store of each vector under
// the union's mask. Widths that are not a multiple of the vector length end
// in scalar code with the same rule.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/activation_mask.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#include <cmath>

#include "kernels/activation_mask.h"

HWY_BEFORE_NAMESPACE();
namespace ffn {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using DI = hn::RebindToSigned<DF>;

// The rule's mask for channels j .. j + Lanes of token t.
HWY_INLINE hn::Mask<DF> KeepMask(const float* HWY_RESTRICT x, int64_t t, int64_t j, int64_t width,
                                 const KeepRule& rule) {
  const DF d;
  if (rule.keep) {
    const DI di;
    const hn::Rebind<uint8_t, DI> d8;
    const auto bytes = hn::PromoteTo(di, hn::LoadU(d8, rule.keep + t * width + j));
    return hn::RebindMask(d, hn::Ne(bytes, hn::Zero(di)));
  }
  const auto threshold = rule.channel_thresholds ? hn::LoadU(d, rule.channel_thresholds + j) : hn::Set(d, rule.threshold);
  return hn::Gt(hn::Abs(hn::LoadU(d, x + t * width + j)), threshold);
}

// The same rule for one entry (the scalar tails).
HWY_INLINE bool KeepOne(const float* x, int64_t t, int64_t j, int64_t width, const KeepRule& rule) {
  if (rule.keep) return rule.keep[t * width + j] != 0;
  return std::fabs(x[t * width + j]) > (rule.channel_thresholds ? rule.channel_thresholds[j] : rule.threshold);
}

KeptCounts MarkKept(const float* x, int64_t n_tok, int64_t width, const KeepRule& rule, int32_t* in_union) {
  const DF d;
  const DI di;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d)), vec_width = width / N * N;
  KeptCounts c;
  for (int64_t j = 0; j < width; ++j) in_union[j] = 0;
  for (int64_t t = 0; t < n_tok; ++t) {
    for (int64_t j = 0; j < vec_width; j += N) {
      const auto m = KeepMask(x, t, j, width, rule);
      c.kept += hn::CountTrue(d, m);
      const auto flags = hn::Or(hn::LoadU(di, in_union + j), hn::VecFromMask(di, hn::RebindMask(di, m)));
      hn::StoreU(flags, di, in_union + j);
    }
    for (int64_t j = vec_width; j < width; ++j) {
      const bool k = KeepOne(x, t, j, width, rule);
      c.kept += k;
      in_union[j] |= k ? -1 : 0;
    }
  }
  for (int64_t j = 0; j < width; ++j) c.union_size += in_union[j] != 0;
  return c;
}

void PackKept(const float* x, int64_t n_tok, int64_t width, const KeepRule& rule, const int32_t* in_union,
              int64_t union_size, int32_t* active, float* values) {
  const DF d;
  const DI di;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d)), vec_width = width / N * N;
  auto union_mask = [&](int64_t j) { return hn::Ne(hn::LoadU(di, in_union + j), hn::Zero(di)); };
  if (active) {
    int64_t k = 0;
    for (int64_t j = 0; j < vec_width; j += N)
      k += static_cast<int64_t>(
          hn::CompressBlendedStore(hn::Iota(di, static_cast<int32_t>(j)), union_mask(j), di, active + k));
    for (int64_t j = vec_width; j < width; ++j)
      if (in_union[j]) active[k++] = static_cast<int32_t>(j);
  }
  for (int64_t t = 0; t < n_tok; ++t) {
    float* v = values + t * union_size;
    int64_t at = 0;
    for (int64_t j = 0; j < vec_width; j += N) {
      const auto kept = hn::IfThenElseZero(KeepMask(x, t, j, width, rule), hn::LoadU(d, x + t * width + j));
      at += static_cast<int64_t>(hn::CompressBlendedStore(kept, hn::RebindMask(d, union_mask(j)), d, v + at));
    }
    for (int64_t j = vec_width; j < width; ++j)
      if (in_union[j]) v[at++] = KeepOne(x, t, j, width, rule) ? x[t * width + j] : 0.0f;
  }
}

void MaskKept(const float* x, int64_t n_tok, int64_t width, const KeepRule& rule, float* out) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d)), vec_width = width / N * N;
  for (int64_t t = 0; t < n_tok; ++t) {
    for (int64_t j = 0; j < vec_width; j += N)
      hn::StoreU(hn::IfThenElseZero(KeepMask(x, t, j, width, rule), hn::LoadU(d, x + t * width + j)), d,
                 out + t * width + j);
    for (int64_t j = vec_width; j < width; ++j)
      out[t * width + j] = KeepOne(x, t, j, width, rule) ? x[t * width + j] : 0.0f;
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace ffn
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace ffn {

HWY_EXPORT(MarkKept);
HWY_EXPORT(PackKept);
HWY_EXPORT(MaskKept);

KeptCounts mark_kept(const float* x, int64_t n_tok, int64_t width, const KeepRule& rule, int32_t* in_union) {
  return HWY_DYNAMIC_DISPATCH(MarkKept)(x, n_tok, width, rule, in_union);
}

void pack_kept(const float* x, int64_t n_tok, int64_t width, const KeepRule& rule, const int32_t* in_union,
               int64_t union_size, int32_t* active, float* values) {
  HWY_DYNAMIC_DISPATCH(PackKept)(x, n_tok, width, rule, in_union, union_size, active, values);
}

void mask_kept(const float* x, int64_t n_tok, int64_t width, const KeepRule& rule, float* out) {
  HWY_DYNAMIC_DISPATCH(MaskKept)(x, n_tok, width, rule, out);
}

}  // namespace ffn
#endif  // HWY_ONCE
