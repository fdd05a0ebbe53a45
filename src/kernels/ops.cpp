#include "kernels/ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace ffn {

void rmsnorm(const float* x, const float* weight, float* y, int64_t n, float eps) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += double(x[i]) * x[i];
  const float scale = static_cast<float>(1.0 / std::sqrt(ss / n + eps));
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale * weight[i];
}

void softmax(float* x, int64_t n) {
  float mx = x[0];
  for (int64_t i = 1; i < n; ++i) mx = std::max(mx, x[i]);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void split_columns(const float* src, int64_t n_rows, std::initializer_list<ColumnPart> parts) {
  for (int64_t r = 0; r < n_rows; ++r)
    for (const ColumnPart& p : parts) {
      std::copy(src, src + p.width, p.dst + r * p.width);
      src += p.width;
    }
}

void rope_angles(int64_t pos, int64_t rot_dim, float base, float* cos_sin) {
  const int64_t half = rot_dim / 2;
  for (int64_t i = 0; i < half; ++i) {
    // double for the angle: positions reach 1e5 and fp32 would lose digits.
    const double theta = double(pos) * std::pow(double(base), -2.0 * double(i) / double(rot_dim));
    cos_sin[i] = static_cast<float>(std::cos(theta));
    cos_sin[half + i] = static_cast<float>(std::sin(theta));
  }
}

void rope_rotate(float* x, int64_t n_heads, int64_t head_dim, int64_t rot_dim, const float* cos_sin,
                 RopeStyle style) {
  const int64_t half = rot_dim / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* v = x + h * head_dim;
    for (int64_t i = 0; i < half; ++i) {
      const float c = cos_sin[i], s = cos_sin[half + i];
      const int64_t a = style == RopeStyle::Interleaved ? 2 * i : i;
      const int64_t b = style == RopeStyle::Interleaved ? 2 * i + 1 : i + half;
      const float x0 = v[a], x1 = v[b];
      v[a] = x0 * c - x1 * s;
      v[b] = x0 * s + x1 * c;
    }
  }
}

void rope(float* x, int64_t n_heads, int64_t head_dim, int64_t rot_dim, int64_t pos, float base,
          RopeStyle style) {
  std::vector<float> cos_sin(static_cast<size_t>(rot_dim));
  rope_angles(pos, rot_dim, base, cos_sin.data());
  rope_rotate(x, n_heads, head_dim, rot_dim, cos_sin.data(), style);
}

}  // namespace ffn
