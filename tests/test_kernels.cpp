// Kernels against plain references on random data at odd sizes (not
// multiples of any vector width).
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <random>

#include "core/half.h"
#include "core/thread_pool.h"
#include "io/safetensors_source.h"
#include "kernels/convert.h"
#include "kernels/matmul.h"
#include "kernels/matmul_quant.h"
#include "kernels/ops.h"
#include "kernels/quant_blocks.h"
#include "test_util.h"

namespace ffn {
namespace {

TEST(Kernels, MatmulMatchesScalarReferenceAtOddSizes) {
  ThreadPool pool(2);
  for (int64_t n_tok : {1, 3, 4, 5, 9})
    for (int64_t n_in : {1, 7, 17, 63, 130, 301})
      for (int64_t n_out : {1, 5, 33, 67, 258}) {
        const auto x = test::random_floats(n_tok * n_in, 1 + n_tok * 1000 + n_in);
        const auto w = test::random_floats(n_out * n_in, 7 + n_out);
        std::vector<float> y(n_tok * n_out), ref(n_tok * n_out);
        matmul_f32(x.data(), n_tok, n_in, w.data(), n_out, y.data(), pool);
        matmul_f32_reference(x.data(), n_tok, n_in, w.data(), n_out, ref.data());
        for (size_t i = 0; i < y.size(); ++i)
          // fp32 accumulation in another order: error grows ~ sqrt(n_in) ulps.
          ASSERT_NEAR(y[i], ref[i], 1e-5 * std::sqrt(double(n_in)) * 4)
              << n_tok << "x" << n_in << "x" << n_out << " at " << i;
      }
}

// The AVX-512 activation quantizer gives the scalar definition's bytes:
// random blocks at several magnitudes, a block of zeros, ties at .5 steps
// (round to nearest even) and values at the clamp (x = +-max).
TEST(Kernels, QuantizedActivationsFastPathEqualsScalarDefinition) {
  if (!cpu_has_avx512bw()) GTEST_SKIP() << "no AVX-512 BW on this CPU";
  const int64_t n_tok = 3, n_in = 32 * 9;
  auto x = test::random_floats(size_t(n_tok * n_in), 42);
  for (int64_t i = 0; i < n_in; ++i) x[size_t(i)] *= float(1 + i / 32) * 3.7f;  // magnitudes per block
  for (int j = 0; j < 32; ++j) x[size_t(32 + j)] = 0.0f;                         // an all-zero block
  for (int j = 0; j < 32; ++j) x[size_t(64 + j)] = float(j - 16) * 0.5f + (j == 0 ? -127.0f : 0.0f);
  QuantizedActivations fast, ref;
  fast.quantize(x.data(), n_tok, n_in, QuantPath::Vnni);
  ref.quantize(x.data(), n_tok, n_in, QuantPath::Portable);
  ASSERT_EQ(fast.q.size(), ref.q.size());
  for (size_t i = 0; i < ref.q.size(); ++i) ASSERT_EQ(fast.q[i], ref.q[i]) << "value " << i;
  for (size_t i = 0; i < ref.d.size(); ++i) ASSERT_EQ(fast.d[i], ref.d[i]) << "block " << i;
  for (size_t i = 0; i < ref.offset8.size(); ++i) ASSERT_EQ(fast.offset8[i], ref.offset8[i]) << "lane " << i;
  // sum: each block's int8 values added (the packed kernels' zero-point term).
  for (size_t b = 0; b < ref.sum.size(); ++b) {
    int32_t direct = 0;
    for (size_t j = 0; j < 32; ++j) direct += ref.q[b * 32 + j];
    ASSERT_EQ(ref.sum[b], direct) << "block " << b;
    ASSERT_EQ(fast.sum[b], direct) << "block " << b;
  }
  int nonzero = 0;
  for (int8_t v : ref.q) nonzero += v != 0;
  EXPECT_GT(nonzero, int(ref.q.size()) / 2);
}

// Weight-type kernels against the scalar reference (exact decode, double
// accumulation) on random data at odd sizes. Tolerance: 1e-5 of the sum of
// |x_i * w_i| of each output (fp32 accumulation in another order).
TEST(Kernels, TypedMatmulsMatchScalarReferenceAtOddSizes) {
  ThreadPool pool(2);
  for (DType type : {DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0})
    for (QuantPath path : {QuantPath::Portable, QuantPath::Vnni}) {
      const bool quant = type == DType::Q8_0 || type == DType::Q4_0;
      if (!quant && path == QuantPath::Vnni) continue;
      if (path == QuantPath::Vnni && !cpu_has_vnni()) {
        std::printf("no AVX-512 VNNI on this CPU: Vnni path not tested\n");
        continue;
      }
      for (int64_t n_tok : {1, 3, 4, 6})
        for (int64_t n_in : {32, 96, 288})
          for (int64_t n_out : {1, 5, 67}) {
            const auto x = test::random_floats(n_tok * n_in, 17 + n_in);
            const auto wf = test::random_floats(n_out * n_in, 3 + n_out);
            std::vector<uint8_t> w(dtype_row_bytes(type, n_in) * n_out);
            for (int64_t r = 0; r < n_out; ++r)
              encode_row(type, wf.data() + r * n_in, w.data() + r * dtype_row_bytes(type, n_in), n_in);
            std::vector<float> y(n_tok * n_out), ref(n_tok * n_out), l1(n_tok * n_out);
            if (quant) matmul_quant(type, x.data(), n_tok, n_in, w.data(), n_out, y.data(), pool, path);
            else matmul_dense(type, x.data(), n_tok, n_in, w.data(), n_out, y.data(), pool);
            const auto x_ref = path == QuantPath::Vnni ? test::int8_roundtrip(x) : x;
            matmul_reference(type, x_ref.data(), n_tok, n_in, w.data(), n_out, ref.data());
            std::vector<float> x_abs(x_ref.size());
            for (size_t i = 0; i < x_ref.size(); ++i) x_abs[i] = std::abs(x_ref[i]);
            std::vector<float> w_abs(wf.size());
            for (size_t i = 0; i < wf.size(); ++i) w_abs[i] = std::abs(wf[i]) * 1.01f;  // bounds |decoded w|
            matmul_f32_reference(x_abs.data(), n_tok, n_in, w_abs.data(), n_out, l1.data());
            for (size_t i = 0; i < y.size(); ++i)
              ASSERT_NEAR(y[i], ref[i], 1e-5 * l1[i]) << dtype_name(type) << " path " << int(path) << " "
                                                      << n_tok << "x" << n_in << "x" << n_out << " at " << i;
          }
    }
}

TEST(Kernels, DotAndAxpyAtOddSizes) {
  for (int64_t n : {1, 3, 15, 16, 17, 33, 100, 1025}) {
    const auto a = test::random_floats(n, n), b = test::random_floats(n, n + 1);
    double ref = 0;
    for (int64_t i = 0; i < n; ++i) ref += double(a[i]) * b[i];
    EXPECT_NEAR(dot_f32(a.data(), b.data(), n), ref, 1e-5 * std::sqrt(double(n)) * 4) << n;
    auto y = b;
    axpy_f32(0.37f, a.data(), y.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(y[i], b[i] + 0.37f * a[i], 1e-6) << n;
  }
}

TEST(Kernels, SplitColumnsUndoesSideBySideRows) {
  const int64_t n = 3, widths[3] = {5, 2, 7}, total = 14;
  const auto src = test::random_floats(size_t(n * total), 4);
  std::vector<float> a(size_t(n * widths[0])), b(size_t(n * widths[1])), c(size_t(n * widths[2]));
  split_columns(src.data(), n, {{a.data(), widths[0]}, {b.data(), widths[1]}, {c.data(), widths[2]}});
  for (int64_t r = 0; r < n; ++r) {
    const float* row = src.data() + r * total;
    for (int64_t j = 0; j < widths[0]; ++j) EXPECT_EQ(a[size_t(r * widths[0] + j)], row[j]);
    for (int64_t j = 0; j < widths[1]; ++j) EXPECT_EQ(b[size_t(r * widths[1] + j)], row[widths[0] + j]);
    for (int64_t j = 0; j < widths[2]; ++j) EXPECT_EQ(c[size_t(r * widths[2] + j)], row[widths[0] + widths[1] + j]);
  }
}

TEST(Kernels, RmsnormSoftmaxSiluMatchDoubleReference) {
  const int64_t n = 37;
  const auto x = test::random_floats(n, 3), w = test::random_floats(n, 4);
  std::vector<float> y(n);
  rmsnorm(x.data(), w.data(), y.data(), n, 1e-5f);
  double ss = 0;
  for (float v : x) ss += double(v) * v;
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(y[i], x[i] / std::sqrt(ss / n + 1e-5) * w[i], 1e-6);

  auto s = x;
  for (auto& v : s) v *= 20;  // a wide range exercises the max subtraction
  softmax(s.data(), n);
  double denom = 0;
  for (float v : x) denom += std::exp(20.0 * v);
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(s[i], std::exp(20.0 * x[i]) / denom, 1e-6);

}

// The vector exp path and its scalar tail (n = 1037), over a range that
// reaches exp(-g) overflow (g down to -120) and silu(g) ~ g (g up to 120).
TEST(Kernels, SiluMulMatchesDoubleReference) {
  const int64_t n = 1037;
  auto x = test::random_floats(n, 5);
  const auto w = test::random_floats(n, 6);
  for (auto& v : x) v *= 120.0f;
  auto g = x;
  silu_mul(g.data(), w.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    const double ref = x[i] / (1 + std::exp(-double(x[i]))) * w[i];
    ASSERT_NEAR(g[i], ref, 2e-6 * std::max(1.0, std::abs(ref))) << "x = " << x[i];
  }
}

// silu alone (GateSparseFfn::select, calibration), out of place and in place.
TEST(Kernels, SiluMatchesDoubleReference) {
  const int64_t n = 1037;
  auto x = test::random_floats(n, 7);
  for (auto& v : x) v *= 120.0f;
  std::vector<float> out(n);
  silu(x.data(), out.data(), n);
  auto in_place = x;
  silu(in_place.data(), in_place.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    const double ref = x[i] / (1 + std::exp(-double(x[i])));
    ASSERT_NEAR(out[i], ref, 2e-6 * std::max(1.0, std::abs(ref))) << "x = " << x[i];
    ASSERT_EQ(in_place[i], out[i]);
  }
}

// RoPE: NeoX (rotate-half) on Hugging Face rows equals interleaved RoPE on

// The bandwidth probes' read kernel: the exact sum mod 2^64 of random words,
// at lengths around its 4-vector step and from unaligned starts.
TEST(Kernels, SumWordsIsTheSumModulo2To64) {
  std::mt19937_64 rng(11);
  std::vector<uint64_t> w(1000);
  for (auto& v : w) v = rng();
  for (int64_t start : {0, 1, 3})
    for (int64_t n : {0, 1, 7, 31, 32, 33, 63, 997 - 3}) {
      uint64_t expected = 0;
      for (int64_t i = 0; i < n; ++i) expected += w[size_t(start + i)];
      ASSERT_EQ(sum_words(w.data() + start, n), expected) << "start " << start << " n " << n;
    }
}
// the rows permuted as the safetensors loader permutes them.
TEST(Kernels, RopeStylesAgreeUnderTheLoaderPermutation) {
  const int64_t n_heads = 3, head_dim = 10;
  const auto hf = test::random_floats(n_heads * head_dim, 11);
  std::vector<float> inter(hf.size());
  for (int64_t r = 0; r < n_heads * head_dim; ++r) inter[r] = hf[rope_interleaved_source_row(r, head_dim)];
  for (int64_t pos : {0, 1, 7, 300}) {
    auto a = hf, b = inter;
    rope(a.data(), n_heads, head_dim, head_dim, pos, 10000.0f, RopeStyle::NeoX);
    rope(b.data(), n_heads, head_dim, head_dim, pos, 10000.0f, RopeStyle::Interleaved);
    for (int64_t r = 0; r < n_heads * head_dim; ++r)
      EXPECT_NEAR(b[r], a[rope_interleaved_source_row(r, head_dim)], 1e-6) << pos << " " << r;
  }
  // Position 0 is the identity; rotation preserves each pair's norm.
  auto z = hf;
  rope(z.data(), n_heads, head_dim, head_dim, 0, 10000.0f, RopeStyle::Interleaved);
  EXPECT_EQ(z, hf);
  auto p = hf;
  rope(p.data(), n_heads, head_dim, head_dim, 5, 10000.0f, RopeStyle::Interleaved);
  EXPECT_NEAR(std::hypot(p[0], p[1]), std::hypot(hf[0], hf[1]), 1e-6);
  EXPECT_GT(std::abs(p[0] - hf[0]), 1e-3);
}

// The angles computed once per position and applied per head (as decode
// does for every layer) against the rotation written out in double, for a
// partial rotary dimension: the rest of each head is left alone.
TEST(Kernels, RopeAnglesRotateAsTheFormulaSays) {
  const int64_t n_heads = 3, head_dim = 10, rot_dim = 6, half = rot_dim / 2;
  const float base = 500.0f;
  const auto x = test::random_floats(size_t(n_heads * head_dim), 19);
  for (RopeStyle style : {RopeStyle::Interleaved, RopeStyle::NeoX})
    for (int64_t pos : {1, 33, 4097}) {
      std::vector<float> cos_sin(static_cast<size_t>(rot_dim)), y = x;
      rope_angles(pos, rot_dim, base, cos_sin.data());
      rope_rotate(y.data(), n_heads, head_dim, rot_dim, cos_sin.data(), style);
      for (int64_t h = 0; h < n_heads; ++h) {
        const float* in = x.data() + h * head_dim;
        const float* out = y.data() + h * head_dim;
        for (int64_t i = 0; i < half; ++i) {
          const double theta = double(pos) / std::pow(double(base), 2.0 * double(i) / double(rot_dim));
          const int64_t a = style == RopeStyle::Interleaved ? 2 * i : i;
          const int64_t b = style == RopeStyle::Interleaved ? 2 * i + 1 : i + half;
          EXPECT_NEAR(out[a], in[a] * std::cos(theta) - in[b] * std::sin(theta), 1e-5) << pos << " " << h << " " << i;
          EXPECT_NEAR(out[b], in[a] * std::sin(theta) + in[b] * std::cos(theta), 1e-5) << pos << " " << h << " " << i;
        }
        for (int64_t j = rot_dim; j < head_dim; ++j) EXPECT_EQ(out[j], in[j]);
      }
    }
}

TEST(Kernels, HalfConversionsAreExact) {
  // Every finite f16 survives f16 -> f32 -> f16.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue;  // NaN payloads
    ASSERT_EQ(f32_to_f16(f16_to_f32(static_cast<uint16_t>(h))), h) << h;
  }
  EXPECT_EQ(f16_to_f32(0x3c00), 1.0f);
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);      // tie -> even
  EXPECT_EQ(f32_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);  // tie -> even (up)
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);                          // rounds to inf
  EXPECT_EQ(f32_to_f16(65519.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);  // tie between 0 and min subnormal -> 0
  EXPECT_EQ(f32_to_f16(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(bits_to_f32(0x3f808000)), 0x3f80);  // tie -> even
  EXPECT_EQ(f32_to_bf16(bits_to_f32(0x3f818000)), 0x3f82);
  for (uint32_t b = 0; b < 0x10000; b += 7) {
    if ((b & 0x7f80) == 0x7f80) continue;
    ASSERT_EQ(f32_to_bf16(bf16_to_f32(static_cast<uint16_t>(b))), b);
  }
}

// Q8_0 / Q4_0 decoding against the GGUF block definitions, on hand-built
// blocks with a non-trivial scale.
TEST(Kernels, DequantizeQ8_0AndQ4_0FollowTheBlockDefinitions) {
  BlockQ8_0 q8[2];
  BlockQ4_0 q4[2];
  for (int b = 0; b < 2; ++b) {
    q8[b].d = f32_to_f16(0.125f * (b + 1));
    q4[b].d = f32_to_f16(-0.5f * (b + 1));
    for (int j = 0; j < 32; ++j) q8[b].qs[j] = static_cast<int8_t>(j * 7 - 100 + b);
    for (int j = 0; j < 16; ++j) q4[b].qs[j] = static_cast<uint8_t>((j + b) % 16 | (((15 - j) % 16) << 4));
  }
  std::vector<float> out(64);
  dequantize_row(DType::Q8_0, reinterpret_cast<const uint8_t*>(q8), out.data(), 64);
  for (int b = 0; b < 2; ++b)
    for (int j = 0; j < 32; ++j) EXPECT_EQ(out[b * 32 + j], 0.125f * (b + 1) * (j * 7 - 100 + b));
  dequantize_row(DType::Q4_0, reinterpret_cast<const uint8_t*>(q4), out.data(), 64);
  for (int b = 0; b < 2; ++b)
    for (int j = 0; j < 16; ++j) {
      EXPECT_EQ(out[b * 32 + j], -0.5f * (b + 1) * ((j + b) % 16 - 8));       // low nibble: weight j
      EXPECT_EQ(out[b * 32 + j + 16], -0.5f * (b + 1) * ((15 - j) % 16 - 8));  // high nibble: weight j+16
    }
}

// Q8_0 rounds x / d halves away from zero (GGUF's roundf): a block with
// max |x| = 127 has d = 1, so x itself is rounded, at and beside every tie.
TEST(Kernels, EncodeQ8_0RoundsHalvesAwayFromZero) {
  const float below_half = std::nextafter(0.5f, 0.0f);
  const float x[32] = {127.0f, -127.0f, 0.5f, -0.5f, 1.5f, -1.5f, 2.5f, -2.5f, below_half, -below_half,
                       126.5f, -126.5f, 0.0f, -0.0f, 3.25f, -3.75f, 100.5f, -100.5f, 7.0f, -7.0f,
                       std::nextafter(1.5f, 2.0f), std::nextafter(-1.5f, -2.0f), 0.75f, -0.25f, 64.5f, -64.5f,
                       5.5f, -5.5f, 9.49f, -9.51f, 42.5f, -42.5f};
  BlockQ8_0 blk;
  encode_row(DType::Q8_0, x, reinterpret_cast<uint8_t*>(&blk), 32);
  ASSERT_EQ(f16_to_f32(blk.d), 1.0f);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(blk.qs[j], static_cast<int8_t>(std::roundf(x[j]))) << "x = " << x[j];
}

TEST(Kernels, EncodeRowRoundTripsThroughDequantize) {
  const auto x = test::random_floats(45, 9);
  for (DType t : {DType::F32, DType::F16, DType::BF16}) {
    std::vector<uint8_t> buf(dtype_row_bytes(t, 45));
    std::vector<float> back(45);
    encode_row(t, x.data(), buf.data(), 45);
    dequantize_row(t, buf.data(), back.data(), 45);
    const double tol = t == DType::F32 ? 0 : t == DType::F16 ? 1e-3 : 8e-3;
    for (int i = 0; i < 45; ++i) EXPECT_NEAR(back[i], x[i], tol) << dtype_name(t);
  }
}

TEST(ThreadPoolTest, ParallelForCoversEveryIndexOnce) {
  ThreadPool pool(3);
  for (int64_t n : {1, 2, 3, 10, 1001}) {
    std::vector<std::atomic<int>> hits(n);
    for (int rep = 0; rep < 20; ++rep)
      pool.parallel_for(n, [&](int64_t b, int64_t e, int) {
        for (int64_t i = b; i < e; ++i) hits[i]++;
      });
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 20) << n << " " << i;
  }
}

}  // namespace
}  // namespace ffn
