// The AMX tile kernels (kernels/amx_packed-inl.h) on the scalar tile
// emulator (emulated_tiles.h) against the AVX-512 tiles and the scalar
// reference, at odd shapes (partial row tiles, partial token groups, row
// ranges as matmul_many cuts them), and a real model's prefill on them;
// the start-up self-check and the
// decision whether to use the tiles; and, on a CPU with AMX, the tiles
// themselves against the emulator.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

#include "core/thread_pool.h"
#include "emulated_tiles.h"
#include "io/model_source.h"
#include "kernels/amx_packed-inl.h"
#include "kernels/amx_packed.h"
#include "kernels/matmul.h"
#include "kernels/packed_bf16.h"
#include "kernels/packed_quant.h"
#include "model/llama_model.h"
#include "test_util.h"
#include "transform/retype.h"

namespace ffn {
namespace {

using test::EmulatedTiles;

bool can_run_here() { return cpu_has_avx512bw() && cpu_has_avx512_bf16(); }

// Activations in both prepared forms: int8 blocks and bf16.
QuantizedActivations prepare(const std::vector<float>& x, int64_t n_tok, int64_t cols) {
  QuantizedActivations xa;
  xa.quantize(x.data(), n_tok, cols, QuantPath::Portable);
  xa.bf16.resize(x.size());
  round_to_bf16(x.data(), int64_t(x.size()), xa.bf16.data());
  return xa;
}

// sum_i |x_i| |w_i| of every output (the reference on absolute values):
// the scale of its rounding errors. xr: the activations as rounded.
std::vector<float> abs_products(const WeightMatrix& plain, const std::vector<float>& xr, int64_t n_tok) {
  std::vector<float> xabs(xr.size()), wabs(size_t(plain.rows * plain.cols)), l1(size_t(n_tok * plain.rows));
  for (size_t i = 0; i < xr.size(); ++i) xabs[i] = std::abs(xr[i]);
  for (int64_t r = 0; r < plain.rows; ++r) read_row(plain, r, wabs.data() + r * plain.cols);
  for (float& v : wabs) v = std::abs(v);
  matmul_f32_reference(xabs.data(), n_tok, plain.cols, wabs.data(), plain.rows, l1.data());
  return l1;
}

template <class Tiles>
void amx_rows(const WeightMatrix& w, const QuantizedActivations& xa, int64_t n_tok, float* y, int64_t r0, int64_t r1) {
  if (w.type == DType::BF16) AmxPacked<Tiles>::bf16_rows(w, xa.bf16.data(), n_tok, y, w.rows, r0, r1);
  else AmxPacked<Tiles>::quant_rows(w, xa, n_tok, y, w.rows, r0, r1);
}

TEST(AmxPacked, EmulatedTilesEqualAvx512TilesAndReference) {
  if (!can_run_here()) GTEST_SKIP() << "no AVX-512 BW + BF16 for the packed layouts on this CPU";
  for (DType type : {DType::Q8_0, DType::Q4_0, DType::BF16})
    for (int64_t rows : {1, 16, 37, 130})
      for (int64_t cols : {32, 96, 288}) {
        WeightMatrix w = test::random_weight(type, rows, cols, uint64_t(rows * 131 + cols));
        const WeightMatrix plain = w;
        pack_row_tiles(w, nullptr);
        ASSERT_NE(w.packed, nullptr);
        // Row ranges as matmul_many's pieces give them: all rows, and one
        // starting at a later tile and ending inside one.
        std::vector<std::pair<int64_t, int64_t>> ranges = {{0, rows}};
        if (rows > 40) ranges.emplace_back(kPackRows, rows - 3);
        for (int64_t n_tok : {1, 15, 16, 17, 33, 40}) {
          const auto x = test::random_floats(size_t(n_tok * cols), uint64_t(n_tok * 7 + cols));
          const QuantizedActivations xa = prepare(x, n_tok, cols);
          const std::vector<float> xr = type == DType::BF16 ? test::bf16_roundtrip(x) : test::int8_roundtrip(x);
          std::vector<float> ref(size_t(n_tok * rows));
          matmul_reference(type, xr.data(), n_tok, cols, plain.data, rows, ref.data());
          const std::vector<float> l1 = abs_products(plain, xr, n_tok);
          for (auto [r0, r1] : ranges) {
            std::vector<float> got(ref.size(), NAN), avx(ref.size(), NAN);
            EmulatedTiles::products() = 0;
            amx_rows<EmulatedTiles>(w, xa, n_tok, got.data(), r0, r1);
            EXPECT_GT(EmulatedTiles::products(), 0);
            matmul_packed_rows(w, xa, n_tok, avx.data(), rows, r0, r1, QuantPath::Portable);
            for (int64_t t = 0; t < n_tok; ++t)
              for (int64_t r = 0; r < rows; ++r) {
                const size_t i = size_t(t * rows + r);
                const std::string where = std::string(dtype_name(type)) + " " + std::to_string(n_tok) + " tokens x " +
                                          std::to_string(cols) + " x " + std::to_string(rows) + " rows [" +
                                          std::to_string(r0) + ", " + std::to_string(r1) + ") at token " +
                                          std::to_string(t) + " row " + std::to_string(r);
                if (r < r0 || r >= r1) {
                  ASSERT_TRUE(std::isnan(got[i])) << "wrote outside its rows: " << where;
                  continue;
                }
                ASSERT_GT(l1[i], 0.0f) << where;
                ASSERT_NEAR(got[i], ref[i], 1e-5 * l1[i]) << where;
                // The integer tiles are scaled in the AVX-512 tiles' order:
                // the same bits.
                if (type != DType::BF16) ASSERT_EQ(std::memcmp(&got[i], &avx[i], 4), 0) << where;
                else ASSERT_NEAR(got[i], avx[i], 1e-5 * l1[i]) << where;
              }
          }
        }
      }
}

// Tile units with one wrong lane: the self-check must notice.
struct IntOffByOneTiles : EmulatedTiles {
  template <int C, int A, int B>
  static void dot_s8s8() {
    EmulatedTiles::dot_s8s8<C, A, B>();
    state().tile[C][0][0] += 1;
  }
};
struct Bf16OffTiles : EmulatedTiles {
  template <int C, int A, int B>
  static void dot_bf16() {
    EmulatedTiles::dot_bf16<C, A, B>();
    float v;
    std::memcpy(&v, state().tile[C][0], 4);
    v += 1.0f;
    std::memcpy(state().tile[C][0], &v, 4);
  }
};

TEST(AmxPacked, SelfCheckPassesOnEmulatedTilesAndCatchesAWrongLane) {
  if (!can_run_here()) GTEST_SKIP() << "no AVX-512 BW + BF16 for the packed layouts on this CPU";
  EXPECT_TRUE(amx_agrees_with_avx512<EmulatedTiles>());
  EXPECT_FALSE(amx_agrees_with_avx512<IntOffByOneTiles>());
  EXPECT_FALSE(amx_agrees_with_avx512<Bf16OffTiles>());
}

// The emulator faults where the hardware would, so kernels that pass on it
// use shapes an AMX CPU accepts.
TEST(AmxPacked, EmulatorFaultsOnMisuse) {
  EmulatedTiles::release();
  EXPECT_THROW(EmulatedTiles::zero<0>(), std::logic_error);  // before LDTILECFG
  TileConfig big;
  big.set(0, 17, 64);
  EXPECT_THROW(EmulatedTiles::configure(big), std::logic_error);
  TileConfig wide;
  wide.set(0, 16, 68);
  EXPECT_THROW(EmulatedTiles::configure(wide), std::logic_error);
  TileConfig half;
  half.set(0, 16, 0);
  EXPECT_THROW(EmulatedTiles::configure(half), std::logic_error);
  TileConfig c;
  c.set(0, 16, 64);  // C 16 x 16
  c.set(4, 16, 32);  // A 16 x 32 bytes: K = 32
  c.set(6, 16, 64);  // B 16 rows: K would be 64
  EmulatedTiles::configure(c);
  EXPECT_THROW((EmulatedTiles::dot_s8s8<0, 4, 6>()), std::logic_error);
  EXPECT_THROW((EmulatedTiles::dot_s8s8<0, 4, 7>()), std::logic_error);  // tile 7 not configured
  c.set(6, 8, 64);
  EmulatedTiles::configure(c);
  EXPECT_NO_THROW((EmulatedTiles::dot_s8s8<0, 4, 6>()));
  c.set(0, 8, 64);  // C rows != A rows
  EmulatedTiles::configure(c);
  EXPECT_THROW((EmulatedTiles::dot_s8s8<0, 4, 6>()), std::logic_error);
  EmulatedTiles::release();
}

TEST(AmxSupport, DecisionFollowsCpuEnvironmentPermissionAndSelfCheck) {
  int asked = 0, checked = 0;
  auto grant = [&] { return ++asked, 0; };
  auto refuse = [&] { return ++asked, EINVAL; };
  auto pass = [&] { return ++checked, true; };
  auto fail = [&] { return ++checked, false; };

  AmxSupport s = decide_amx(false, nullptr, grant, pass);
  EXPECT_FALSE(s.in_use);
  EXPECT_NE(s.reason.find("no AMX tiles on this CPU"), std::string::npos) << s.reason;
  EXPECT_FALSE(s.surprising);
  EXPECT_EQ(asked, 0);  // nothing asked of a kernel on a CPU without tiles

  s = decide_amx(true, "0", grant, pass);
  EXPECT_FALSE(s.in_use);
  EXPECT_EQ(s.reason, "off (FFN_AMX=0)");
  EXPECT_FALSE(s.surprising);
  EXPECT_EQ(asked, 0);

  s = decide_amx(true, nullptr, refuse, pass);
  EXPECT_FALSE(s.in_use);
  EXPECT_NE(s.reason.find("refused the tile state (" + std::string(std::strerror(EINVAL)) + "; Linux 5.16"),
            std::string::npos)
      << s.reason;
  EXPECT_TRUE(s.surprising);
  EXPECT_EQ(checked, 0);  // no tile instruction runs without the permission

  s = decide_amx(true, nullptr, grant, fail);
  EXPECT_FALSE(s.in_use);
  EXPECT_NE(s.reason.find("disagreed"), std::string::npos) << s.reason;
  EXPECT_TRUE(s.surprising);

  s = decide_amx(true, "1", grant, pass);
  EXPECT_TRUE(s.in_use) << s.reason;
  EXPECT_FALSE(s.surprising);
  EXPECT_NE(s.reason.find("bf16 tiles from 16 tokens on, int8 from 32"), std::string::npos) << s.reason;

  s = decide_amx(true, "yes", grant, pass);
  EXPECT_TRUE(s.in_use);
  EXPECT_NE(s.reason.find("FFN_AMX='yes' ignored"), std::string::npos) << s.reason;
}

std::atomic<int64_t> emulated_calls{0};
void emulated_rows(const WeightMatrix& w, const QuantizedActivations& xa, int64_t n_tok, float* y, int64_t y_stride,
                   int64_t r0, int64_t r1) {
  ++emulated_calls;
  if (w.type == DType::BF16) AmxPacked<EmulatedTiles>::bf16_rows(w, xa.bf16.data(), n_tok, y, y_stride, r0, r1);
  else AmxPacked<EmulatedTiles>::quant_rows(w, xa, n_tok, y, y_stride, r0, r1);
}

// The AVX-512 tiles in place of the AMX ones (the baseline, also where the
// hardware tiles would otherwise run).
void avx512_rows(const WeightMatrix& w, const QuantizedActivations& xa, int64_t n_tok, float* y, int64_t y_stride,
                 int64_t r0, int64_t r1) {
  matmul_packed_rows(w, xa, n_tok, y, y_stride, r0, r1, QuantPath::Portable);
}

// A real model (stories260K as Q8_0, Q4_0, BF16) with its prompt's products
// on the emulated tiles and, on an AMX CPU, on the hardware tiles: through
// matmul_many's row ranges on 1 and 2 threads, then a decoded token (one
// token stays on the AVX-512 tiles). The logits equal the AVX-512 run's:
// the same bits for Q8_0/Q4_0; for BF16 within 3e-3 of the largest logit,
// because each unit rounds its fp32 sums its own way: the emulator follows
// the SDM's order (measured 0.8e-3 from vdpbf16ps), and the hardware's
// TDPBF16PS rounds neither in that order nor once (probed on a Xeon with
// AMX: 1.8e-3). AmxSupport.ThisMachine bounds each hardware product.
TEST(AmxPacked, ModelPrefillOnTilesEqualsAvx512) {
  if (!can_run_here()) GTEST_SKIP() << "no AVX-512 BW + BF16 for the packed layouts on this CPU";
  const ModelSource f32 = load_model_source(test::data_path("models/stories260K.gguf"));
  std::vector<int32_t> prompt(40);
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = int32_t(1 + (i * 37) % 500);
  const std::vector<int32_t> next = {42};
  // The tile units: AVX-512 (the baseline), emulated, hardware (null: no
  // override, so matmul_packed_rows takes the tiles itself).
  std::vector<std::pair<const char*, AmxRowsFn>> units = {{"AVX-512", avx512_rows}, {"emulated", emulated_rows}};
  if (amx_in_use()) units.emplace_back("hardware", nullptr);
  for (DType type : {DType::Q8_0, DType::Q4_0, DType::BF16}) {
    const ModelSource src = retype(f32, type);  // (the model reads its weights in place)
    LlamaModel model(src);
    for (int threads : {1, 2}) {
      ThreadPool pool(threads);
      std::vector<std::vector<float>> logits;
      for (auto [unit, rows] : units) {
        override_amx_rows(rows);
        emulated_calls = 0;
        KvCache cache = model.make_cache(64);
        Tensor out;
        model.forward(prompt.data(), int64_t(prompt.size()), cache, out, true, pool);
        const int64_t prefill_calls = emulated_calls;
        model.forward(next.data(), 1, cache, out, true, pool);
        override_amx_rows(nullptr);
        EXPECT_EQ(emulated_calls, prefill_calls) << "one token took the tiles";
        if (rows == emulated_rows) {
          EXPECT_GT(prefill_calls, 0) << dtype_name(type);
        }
        logits.emplace_back(out.data.begin(), out.data.end());
      }
      double scale = 0;
      for (float v : logits[0]) scale = std::max(scale, double(std::abs(v)));
      ASSERT_GT(scale, 0.1);
      for (size_t u = 1; u < units.size(); ++u)
        for (size_t i = 0; i < logits[0].size(); ++i)
          if (type != DType::BF16)
            ASSERT_EQ(logits[u][i], logits[0][i]) << units[u].first << " " << dtype_name(type) << " at " << i;
          else
            ASSERT_NEAR(logits[u][i], logits[0][i], 3e-3 * scale)
                << units[u].first << " BF16 threads " << threads << " at " << i;
    }
  }
}

// On this machine: without AMX the process says so and the products of
// many tokens keep the AVX-512 tiles; with AMX the tiles give the
// emulator's results.
TEST(AmxSupport, ThisMachine) {
  const AmxSupport& s = amx_support();
  std::printf("AMX here: %s (%s)\n", s.in_use ? "in use" : "not used", s.reason.c_str());
  if (!cpu_has_amx()) {
    EXPECT_FALSE(s.in_use);
    EXPECT_FALSE(s.reason.empty());
    // Asking for the tiles anyway is an error, not an illegal instruction.
    if (can_run_here()) {
      WeightMatrix w = test::random_weight(DType::Q8_0, 16, 32, 1);
      pack_row_tiles(w, nullptr);
      const auto x = test::random_floats(32 * 16, 2);
      const QuantizedActivations xa = prepare(x, 16, 32);
      std::vector<float> y(16 * 16);
      EXPECT_THROW(matmul_packed_rows(w, xa, 16, y.data(), 16, 0, 16, QuantPath::Amx), std::logic_error);
    }
    GTEST_SKIP() << "no AMX on this CPU: the hardware tiles are not tested here (" << s.reason << ")";
  }
  if (!s.in_use) GTEST_SKIP() << s.reason;
  for (DType type : {DType::Q8_0, DType::Q4_0, DType::BF16}) {
    WeightMatrix w = test::random_weight(type, 70, 288, 5);
    const WeightMatrix plain = w;
    pack_row_tiles(w, nullptr);
    const int64_t n_tok = 45;
    const auto x = test::random_floats(size_t(n_tok * 288), 6);
    const QuantizedActivations xa = prepare(x, n_tok, 288);
    const std::vector<float> l1 = abs_products(plain, test::bf16_roundtrip(x), n_tok);
    std::vector<float> hw(size_t(n_tok * 70), NAN), emulated(hw.size(), NAN);
    matmul_packed_rows(w, xa, n_tok, hw.data(), 70, 0, 70, QuantPath::Amx);
    amx_rows<EmulatedTiles>(w, xa, n_tok, emulated.data(), 0, 70);
    for (size_t i = 0; i < hw.size(); ++i)
      if (type != DType::BF16) ASSERT_EQ(hw[i], emulated[i]) << dtype_name(type) << " at " << i;
      else ASSERT_NEAR(hw[i], emulated[i], 1e-5 * l1[i]) << dtype_name(type) << " at " << i;
  }
}

}  // namespace
}  // namespace ffn
