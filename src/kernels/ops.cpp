#include "kernels/ops.h"

#include <algorithm>
#include <cmath>

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

void rope(float* x, int64_t n_heads, int64_t head_dim, int64_t rot_dim, int64_t pos, float base,
          RopeStyle style) {
  const int64_t half = rot_dim / 2;
  for (int64_t i = 0; i < half; ++i) {
    // double for the angle: positions reach 1e5 and fp32 would lose digits.
    const double theta = double(pos) * std::pow(double(base), -2.0 * double(i) / double(rot_dim));
    const float c = static_cast<float>(std::cos(theta)), s = static_cast<float>(std::sin(theta));
    for (int64_t h = 0; h < n_heads; ++h) {
      float* v = x + h * head_dim;
      const int64_t a = style == RopeStyle::Interleaved ? 2 * i : i;
      const int64_t b = style == RopeStyle::Interleaved ? 2 * i + 1 : i + half;
      const float x0 = v[a], x1 = v[b];
      v[a] = x0 * c - x1 * s;
      v[b] = x0 * s + x1 * c;
    }
  }
}

}  // namespace ffn
