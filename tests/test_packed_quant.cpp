// Packed (row-tile) Q8_0/Q4_0/BF16/F16 weights: matmul through the packed
// kernels equals the scalar reference on the rounded activations (int8
// blocks, or bf16; F16 keeps them fp32), and the row-major kernel, at odd shapes (rows not a multiple of the
// 16-row tile, 1-13 tokens covering every token-group width), 1-3 threads.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>

#include "core/aligned_buffer.h"
#include "core/thread_pool.h"
#include "ffn/gated_ffn.h"
#include "io/model_source.h"
#include "kernels/convert.h"
#include "kernels/matmul.h"
#include "kernels/matmul_quant.h"
#include "kernels/packed_bf16.h"
#include "kernels/packed_quant.h"
#include "kernels/weight_matrix.h"
#include "model/llama_model.h"
#include "transform/retype.h"
#include "test_util.h"

namespace ffn {
namespace {

using test::bf16_roundtrip;
using test::random_weight;

TEST(PackedQuant, MatmulMatchesReferenceAndRowMajorKernel) {
  for (DType type : {DType::Q8_0, DType::Q4_0, DType::BF16, DType::F16})
    for (int64_t rows : {1, 5, 16, 37, 130})
      for (int64_t cols : {32, 96, 288}) {
        const WeightMatrix plain = random_weight(type, rows, cols, uint64_t(rows * 31 + cols));
        WeightMatrix packed = plain;
        pack_row_tiles(packed, nullptr);
        if (!can_pack(plain)) {
          std::printf("%s: no packed kernel on this CPU, not tested\n", dtype_name(type).c_str());
          break;
        }
        ASSERT_NE(packed.packed, nullptr);
        ASSERT_EQ(packed.data, plain.data);  // the file layout stays for other readers
        for (int threads : {1, 3}) {
          ThreadPool pool(threads);
          for (int64_t n_tok : {1, 3, 4, 9, 13}) {
            const auto x = test::random_floats(size_t(n_tok * cols), uint64_t(7 + n_tok + cols));
            std::vector<float> y(size_t(n_tok * rows), NAN), y_rows(y.size()), ref(y.size()), l1(y.size());
            matmul(packed, x.data(), n_tok, y.data(), pool);
            matmul(plain, x.data(), n_tok, y_rows.data(), pool);
            // Reference: exact weight decode, int8-rounded x, double sums.
            const std::vector<float> xr = type == DType::BF16 ? bf16_roundtrip(x)
                                          : type == DType::F16  ? x
                                                                : test::int8_roundtrip(x);
            matmul_reference(type, xr.data(), n_tok, cols, plain.data, rows, ref.data());
            // Scale of each output: sum |x_i| |w_i| (the reference on absolute values).
            std::vector<float> xa(xr.size()), wa(size_t(rows * cols));
            for (size_t i = 0; i < xr.size(); ++i) xa[i] = std::abs(xr[i]);
            for (int64_t r = 0; r < rows; ++r) {
              read_row(plain, r, wa.data() + r * cols);
              for (int64_t c = 0; c < cols; ++c) wa[size_t(r * cols + c)] = std::abs(wa[size_t(r * cols + c)]);
            }
            matmul_f32_reference(xa.data(), n_tok, cols, wa.data(), rows, l1.data());
            // Without VNNI the row-major Q8_0/Q4_0 path keeps x in fp32
            // (matmul_quant_portable.cpp): its reference is on x itself.
            const bool rows_fp32 = (type == DType::Q8_0 || type == DType::Q4_0) && !cpu_has_vnni();
            std::vector<float> ref_rows = ref;
            if (rows_fp32) matmul_reference(type, x.data(), n_tok, cols, plain.data, rows, ref_rows.data());
            for (size_t i = 0; i < y.size(); ++i) {
              const std::string where = std::string(dtype_name(type)) + " " + std::to_string(n_tok) + "x" +
                                        std::to_string(cols) + "x" + std::to_string(rows) + " threads " +
                                        std::to_string(threads) + " at " + std::to_string(i);
              ASSERT_GT(l1[i], 0.0f) << where;
              ASSERT_NEAR(y[i], ref[i], 1e-5 * l1[i]) << where;
              // The row-major BF16 kernel keeps x in fp32: ~2^-9 relative.
              // (F16: both keep x in fp32, the sums differ in order only.)
              if (rows_fp32) ASSERT_NEAR(y_rows[i], ref_rows[i], 1e-5 * l1[i]) << where;
              else ASSERT_NEAR(y[i], y_rows[i], (type == DType::BF16 ? 4e-3 : 1e-5) * l1[i]) << where;
            }
          }
        }
      }
}

// The one-token tiles prefetch on some CPUs and not on others
// (packed_prefetch_bytes): the distance must not change a product, on
// either path, here whichever this CPU takes by default.
TEST(PackedQuant, PrefetchDistanceDoesNotChangeProducts) {
  for (DType type : {DType::Q8_0, DType::Q4_0, DType::BF16, DType::F16}) {
    WeightMatrix w = random_weight(type, 37, 288, 11);
    if (!can_pack(w)) continue;
    pack_row_tiles(w, nullptr);
    const auto x = test::random_floats(288, 12);
    ThreadPool pool(2);
    std::vector<std::vector<float>> y;
    for (int64_t distance : {int64_t(0), int64_t(1024), int64_t(2048)}) {
      override_packed_prefetch_bytes(distance);
      y.emplace_back(37, NAN);
      matmul(w, x.data(), 1, y.back().data(), pool);
    }
    override_packed_prefetch_bytes(-1);
    EXPECT_EQ(y[0], y[1]) << dtype_name(type);
    EXPECT_EQ(y[0], y[2]) << dtype_name(type);
    EXPECT_FALSE(std::isnan(y[0][36])) << dtype_name(type);
  }
}

// matmul_many over packed and plain jobs that share their input (the
// q/k/v and gate/up shape), several threads: each job equals its own matmul.
TEST(PackedQuant, MixedJobsInOnePass) {
  if (!cpu_has_avx512bw()) GTEST_SKIP() << "no AVX-512 BW on this CPU";
  const int64_t cols = 160;
  std::vector<WeightMatrix> w = {random_weight(DType::Q8_0, 200, cols, 1), random_weight(DType::Q4_0, 48, cols, 2),
                                 random_weight(DType::Q8_0, 37, cols, 3)};
  pack_row_tiles(w[0], nullptr);
  pack_row_tiles(w[1], nullptr);  // w[2] stays row-major
  ThreadPool pool(2);
  for (int64_t n_tok : {1, 6}) {
    const auto x = test::random_floats(size_t(n_tok * cols), 99);
    std::vector<std::vector<float>> y, one;
    std::vector<MatmulJob> jobs;
    for (const auto& m : w) {
      y.emplace_back(size_t(n_tok * m.rows), NAN);
      one.emplace_back(size_t(n_tok * m.rows), NAN);
    }
    for (size_t j = 0; j < w.size(); ++j) jobs.push_back({&w[j], x.data(), y[j].data()});
    matmul_many(jobs.data(), int64_t(jobs.size()), n_tok, pool);
    for (size_t j = 0; j < w.size(); ++j) {
      matmul(w[j], x.data(), n_tok, one[j].data(), pool);
      for (size_t i = 0; i < y[j].size(); ++i) ASSERT_EQ(y[j][i], one[j][i]) << "job " << j << " at " << i;
    }
  }
}

// The AVX-512BW sums (CPUs without VNNI) against the scalar reference on
// int8-rounded x, with every Q8_0 byte value present (-128 included: its
// magnitude 128 is the edge of vpmaddubsw's no-saturation bound), a row of
// the largest weights against a block of the largest x (the int16 bounds of
// byte_dot.h and of the Q4_0 tiles); where the CPU has VNNI, both paths
// give identical outputs.
TEST(PackedQuant, Avx512bwSumsAreExactWithAndWithoutVnni) {
  if (!cpu_has_avx512bw()) GTEST_SKIP() << "no AVX-512 BW on this CPU";
  for (DType type : {DType::Q8_0, DType::Q4_0}) {
    const int64_t rows = 37, cols = 320;
    WeightMatrix w = random_weight(type, rows, cols, 11);
    // Overwrite the quant bytes with a sweep of all 256 byte values.
    uint8_t* bytes = const_cast<uint8_t*>(w.data);
    const uint64_t block = dtype_row_bytes(type, 32);
    for (uint64_t b = 0; b < w.bytes() / block; ++b)
      for (uint64_t j = 2; j < block; ++j) bytes[b * block + j] = uint8_t(b * 7 + j * 13);
    // Row 0 at the largest magnitudes (Q8_0 w = -128, Q4_0 nibble 15), met
    // below by a block of x at q = 127: the int16 sums at their bounds.
    for (uint64_t b = 0; b < uint64_t(cols / 32); ++b)
      for (uint64_t j = 2; j < block; ++j) bytes[b * block + j] = type == DType::Q8_0 ? 0x80 : 0xff;
    const WeightMatrix plain = w;
    pack_row_tiles(w, nullptr);
    ASSERT_NE(w.packed, nullptr);
    for (int64_t n_tok : {1, 4, 8, 11}) {
      auto x = test::random_floats(size_t(n_tok * cols), uint64_t(5 + n_tok));
      for (int64_t t = 0; t < n_tok; ++t) x[size_t(t * cols + t)] = t % 2 ? 9.0f : -9.0f;  // q = +-127
      std::fill(x.begin() + 32, x.begin() + 64, -9.0f);  // a whole block at q = -127
      QuantizedActivations xa;
      xa.quantize(x.data(), n_tok, cols, QuantPath::Portable);
      std::vector<float> y(size_t(n_tok * rows), NAN), y_vnni(y.size(), NAN), ref(y.size()), l1(y.size());
      matmul_packed_rows(w, xa, n_tok, y.data(), rows, 0, rows, QuantPath::Portable);
      const std::vector<float> xr = test::int8_roundtrip(x);
      matmul_reference(type, xr.data(), n_tok, cols, plain.data, rows, ref.data());
      std::vector<float> xa_abs(xr.size()), wa(size_t(rows * cols));
      for (size_t i = 0; i < xr.size(); ++i) xa_abs[i] = std::abs(xr[i]);
      for (int64_t r = 0; r < rows; ++r) read_row(plain, r, wa.data() + r * cols);
      for (float& v : wa) v = std::abs(v);
      matmul_f32_reference(xa_abs.data(), n_tok, cols, wa.data(), rows, l1.data());
      if (cpu_has_vnni()) matmul_packed_rows(w, xa, n_tok, y_vnni.data(), rows, 0, rows, QuantPath::Vnni);
      for (size_t i = 0; i < y.size(); ++i) {
        ASSERT_NEAR(y[i], ref[i], 1e-5 * l1[i]) << dtype_name(type) << " tokens " << n_tok << " at " << i;
        if (cpu_has_vnni()) {
          ASSERT_EQ(y[i], y_vnni[i]) << dtype_name(type) << " tokens " << n_tok << " at " << i;
        }
      }
    }
  }
}

// round_to_bf16 (AVX-512 BF16 where present) gives the definition's bits:
// nearest even, ties, NaN stays NaN, denormals flush to signed zero.
TEST(PackedQuant, Bf16RoundingEqualsDefinition) {
  std::vector<float> x = test::random_floats(1000, 8);
  for (size_t i = 0; i < x.size(); i += 3) x[i] *= 1e30f;
  const float tie = 1.0f + 1.0f / 256.0f;  // exactly between two bf16 values
  x.insert(x.end(), {tie, -tie, 1.0f + 3.0f / 256.0f, 1e-40f, -1e-40f, 0.0f, -0.0f, 3.4e38f});
  std::vector<uint16_t> got(x.size());
  round_to_bf16(x.data(), int64_t(x.size()), got.data());
  const std::vector<float> want = bf16_roundtrip(x);
  for (size_t i = 0; i < x.size(); ++i) {
    uint32_t bits;
    std::memcpy(&bits, &want[i], 4);
    if (std::fpclassify(x[i]) == FP_SUBNORMAL) bits &= 0x80000000u;
    ASSERT_EQ(got[i], uint16_t(bits >> 16)) << "value " << i << " = " << x[i];
  }
  float nan = std::nanf("");
  uint16_t nan_bits;
  round_to_bf16(&nan, 1, &nan_bits);
  EXPECT_EQ(nan_bits & 0x7f80, 0x7f80);
  EXPECT_NE(nan_bits & 0x7f, 0);
}

TEST(PackedQuant, OnlyPackableTypesPack) {
  WeightMatrix f32 = random_weight(DType::F32, 20, 64, 5);
  pack_row_tiles(f32, nullptr);
  EXPECT_EQ(f32.packed, nullptr);
  WeightMatrix f16 = random_weight(DType::F16, 20, 64, 5);
  pack_row_tiles(f16, nullptr);
  EXPECT_EQ(f16.packed != nullptr, cpu_has_avx512_bf16());
  WeightMatrix q = random_weight(DType::Q8_0, 20, 64, 6);
  pack_row_tiles(q, nullptr);
  EXPECT_EQ(q.packed != nullptr, cpu_has_avx512bw());
  EXPECT_EQ(without_packed(q).packed, nullptr);
  for (DType type : {DType::BF16, DType::F16}) {
    WeightMatrix odd = random_weight(type, 20, 48, 7);  // cols not whole 32-column blocks
    pack_row_tiles(odd, nullptr);
    EXPECT_EQ(odd.packed, nullptr);
  }
  // F16 tiles read fp32 activations: the int8/bf16 entry point refuses them.
  if (f16.packed) {
    QuantizedActivations xa;
    std::vector<float> y(20);
    EXPECT_THROW(matmul_packed_rows(f16, xa, 1, y.data(), 20, 0, 20), std::logic_error);
  }
}

// A real model (stories260K re-encoded to Q8_0, Q4_0, BF16 and F16) loaded packed
// (the default: its layer matrices have packed copies, FFN hidden 172 = 10
// tiles + 12 padded rows) and as stored gives the same logits for a prompt
// (prefill) and for a token decoded after it.
TEST(PackedQuant, PackedModelEqualsModelAsStored) {
  if (!cpu_has_avx512bw()) GTEST_SKIP() << "no AVX-512 BW on this CPU";
  const ModelSource f32 = load_model_source(test::data_path("models/stories260K.gguf"));
  for (DType type : {DType::Q8_0, DType::Q4_0, DType::BF16, DType::F16}) {
    if ((type == DType::BF16 || type == DType::F16) && !cpu_has_avx512_bf16()) continue;
    const ModelSource src = retype(f32, type);
    LlamaModel packed(src), stored(src, LlamaModel::Layout::AsStored);
    const auto* ffn = dynamic_cast<const GatedFfn*>(packed.layers()[0].ffn.get());
    ASSERT_NE(ffn, nullptr);
    EXPECT_NE(ffn->gate().packed, nullptr) << dtype_name(type);
    EXPECT_NE(packed.layers()[0].wq.packed, nullptr) << dtype_name(type);
    EXPECT_EQ(stored.layers()[0].wq.packed, nullptr) << dtype_name(type);
    const std::vector<int32_t> prompt = {1, 403, 407, 261, 378, 1, 65, 300, 511}, next = {42};
    for (int threads : {1, 2}) {
      ThreadPool pool(threads);
      KvCache cp = packed.make_cache(16), cs = stored.make_cache(16);
      Tensor lp, ls;
      for (const auto* tokens : {&prompt, &next}) {
        const int64_t n = int64_t(tokens->size());
        packed.forward(tokens->data(), n, cp, lp, true, pool);
        stored.forward(tokens->data(), n, cs, ls, true, pool);
        ASSERT_EQ(lp.data.size(), ls.data.size());
        double scale = 0;
        for (float v : ls.data) scale = std::max(scale, double(std::abs(v)));
        ASSERT_GT(scale, 0.1);
        // Q8_0/Q4_0: the integer block sums are exact, only fp32 summation
        // order differs. BF16, and Q8_0/Q4_0 on CPUs without VNNI: the
        // packed kernel rounds activations (bf16: 2^-9 relative; int8
        // blocks: 2^-8 of each block's largest), the row-major one keeps
        // them fp32.
        // F16: both keep activations fp32, only summation order differs.
        const bool int8_differs = (type == DType::Q8_0 || type == DType::Q4_0) && !cpu_has_vnni();
        const double tol = (int8_differs ? 3e-2 : type == DType::BF16 ? 1e-2 : 1e-4) * scale;
        for (size_t i = 0; i < lp.data.size(); ++i)
          ASSERT_NEAR(lp.data[i], ls.data[i], tol)
              << dtype_name(type) << " threads " << threads << " tokens " << n << " at " << i;
      }
    }
  }
}

}  // namespace
}  // namespace ffn
