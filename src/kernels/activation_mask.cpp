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

// Channel ids j .. j + Lanes - 1, from the lanes' ids 0 .. Lanes - 1 built
// once: Highway's Iota(d, j) per vector stores 16 scalars and reloads them
// as a vector, a failed store forward that made the id pass ~8x slower.
HWY_INLINE hn::Vec<DI> ChannelIds(hn::Vec<DI> lanes, int64_t j) {
  return hn::Add(lanes, hn::Set(DI(), static_cast<int32_t>(j)));
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

int64_t KeptIds(const float* x, int64_t width, const KeepRule& rule, int32_t* kept_ids) {
  const DF d;
  const DI di;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d)), vec_width = width / N * N;
  const auto lanes = hn::Iota(di, 0);
  int64_t k = 0;
  for (int64_t j = 0; j < vec_width; j += N)
    k += static_cast<int64_t>(hn::CompressBlendedStore(ChannelIds(lanes, j),
                                                       hn::RebindMask(di, KeepMask(x, 0, j, width, rule)), di,
                                                       kept_ids + k));
  for (int64_t j = vec_width; j < width; ++j)
    if (KeepOne(x, 0, j, width, rule)) kept_ids[k++] = static_cast<int32_t>(j);
  return k;
}

void PackKept(const float* x, int64_t n_tok, int64_t width, const KeepRule& rule, const int32_t* in_union,
              int64_t union_size, int32_t* active, float* values) {
  const DF d;
  const DI di;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d)), vec_width = width / N * N;
  // Without union flags (one token) the token's own mask is the union's.
  auto union_mask = [&](int64_t j) {
    return in_union ? hn::Ne(hn::LoadU(di, in_union + j), hn::Zero(di))
                    : hn::RebindMask(di, KeepMask(x, 0, j, width, rule));
  };
  auto in_union_at = [&](int64_t j) { return in_union ? in_union[j] != 0 : KeepOne(x, 0, j, width, rule); };
  if (active) {
    const auto lanes = hn::Iota(di, 0);
    int64_t k = 0;
    for (int64_t j = 0; j < vec_width; j += N)
      k += static_cast<int64_t>(hn::CompressBlendedStore(ChannelIds(lanes, j), union_mask(j), di, active + k));
    for (int64_t j = vec_width; j < width; ++j)
      if (in_union_at(j)) active[k++] = static_cast<int32_t>(j);
  }
  for (int64_t t = 0; t < n_tok; ++t) {
    float* v = values + t * union_size;
    int64_t at = 0;
    for (int64_t j = 0; j < vec_width; j += N) {
      const auto kept = hn::IfThenElseZero(KeepMask(x, t, j, width, rule), hn::LoadU(d, x + t * width + j));
      at += static_cast<int64_t>(hn::CompressBlendedStore(kept, hn::RebindMask(d, union_mask(j)), d, v + at));
    }
    for (int64_t j = vec_width; j < width; ++j)
      if (in_union_at(j)) v[at++] = KeepOne(x, t, j, width, rule) ? x[t * width + j] : 0.0f;
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
HWY_EXPORT(KeptIds);
HWY_EXPORT(PackKept);
HWY_EXPORT(MaskKept);

KeptCounts mark_kept(const float* x, int64_t n_tok, int64_t width, const KeepRule& rule, int32_t* in_union) {
  return HWY_DYNAMIC_DISPATCH(MarkKept)(x, n_tok, width, rule, in_union);
}

int64_t kept_ids(const float* x, int64_t width, const KeepRule& rule, int32_t* kept_ids) {
  return HWY_DYNAMIC_DISPATCH(KeptIds)(x, width, rule, kept_ids);
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
