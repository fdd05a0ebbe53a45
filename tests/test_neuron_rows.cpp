// The fused gate-sparse tail over paired neuron rows (kernels/neuron_rows.h):
//  - bitwise the two-pass result (a gather for u, h = act * u, the
//    input-sparse product for y) on the unpaired matrices, with the same
//    pool: the header promises the same arithmetic and split;
//  - within a stated tolerance of a double-precision reference on the
//    decoded weights (Q8_0/Q4_0: only the int8 rounding of x and of h
//    differ; F32/F16/BF16: only the fp32 sums' order);
//  - the paired views read by the batch kernels (several tokens) give
//    bitwise what the unpaired matrices give.
// Random weights and activations (none zero); d_model 192 (6 blocks, a
// partial vector of block scales) and 576 (18 blocks), and 203 for the
// unquantized types (a partial vector); 611 neurons; lists of 0 to all
// neurons, unsorted subsets sorted as the FFN produces them; 1 and 3
// threads (3 threads split lists of >= 342 rows at d_model 192); both
// dot-product paths of Q8_0/Q4_0.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/gather_rows_q8.h"
#include "kernels/group_prefetch.h"
#include "kernels/matmul_quant.h"
#include "kernels/neuron_rows.h"
#include "kernels/packed_quant.h"
#include "kernels/sparse_input_q8.h"
#include "kernels/sparse_matmul.h"
#include "kernels/weight_matrix.h"
#include "test_util.h"

namespace ffn {
namespace {

struct Neurons {
  WeightMatrix up_file, down_t_file;  // file layout (owned)
  WeightMatrix up, down_t;            // each re-laid on its own
  NeuronRows pairs;
};

Neurons make_neurons(DType type, int64_t hidden, int64_t d, uint64_t seed) {
  Neurons n;
  n.up_file = test::random_weight(type, hidden, d, seed);
  n.down_t_file = test::random_weight(type, hidden, d, seed + 1);
  // Q8_0/Q4_0 re-laid as the FFN keeps them; other types as stored.
  n.up = packed_for_sparse_input(n.up_file);
  n.down_t = packed_for_sparse_input(n.down_t_file);
  n.pairs = paired_neuron_rows(n.up, n.down_t);
  return n;
}

std::vector<float> nonzero_floats(size_t n, uint64_t seed) {
  std::vector<float> v = test::random_floats(n, seed);
  for (float& f : v)
    if (std::fabs(f) < 1e-3f) f = 0.5f;
  return v;
}

// y in double on the decoded rows, and each output's scale: the sum over
// kept neurons of |act| * sum_c |up x| * |down|.
struct Reference {
  std::vector<double> y, magnitude;
};
Reference reference(const Neurons& n, int64_t d, const std::vector<float>& x, const std::vector<float>& act,
                    const std::vector<int32_t>& active) {
  Reference r{std::vector<double>(size_t(d), 0.0), std::vector<double>(size_t(d), 0.0)};
  std::vector<float> up(static_cast<size_t>(d)), down(static_cast<size_t>(d));
  for (size_t k = 0; k < active.size(); ++k) {
    read_row(n.up_file, active[k], up.data());
    read_row(n.down_t_file, active[k], down.data());
    double u = 0, u_abs = 0;
    for (int64_t c = 0; c < d; ++c) {
      u += double(up[size_t(c)]) * x[size_t(c)];
      u_abs += std::fabs(double(up[size_t(c)]) * x[size_t(c)]);
    }
    for (int64_t o = 0; o < d; ++o) {
      r.y[size_t(o)] += double(act[k]) * u * double(down[size_t(o)]);
      r.magnitude[size_t(o)] += std::fabs(double(act[k])) * u_abs * std::fabs(double(down[size_t(o)]));
    }
  }
  return r;
}

TEST(NeuronRowsQ8, FusedEqualsTheTwoPassesAndTheReference) {
  if (!cpu_has_avx512bw()) GTEST_SKIP() << "needs AVX-512 BW";
  std::vector<QuantPath> paths = {QuantPath::Portable};
  if (cpu_has_vnni()) paths.push_back(QuantPath::Vnni);
  ThreadPool one(1), three(3);
  const int64_t hidden = 611;
  for (const DType type : {DType::Q8_0, DType::Q4_0}) {
    for (const int64_t d : {192, 576}) {
      const Neurons n = make_neurons(type, hidden, d, uint64_t(d) + (type == DType::Q8_0 ? 0 : 9));
      ASSERT_TRUE(neuron_rows_are_paired(n.pairs.up, n.pairs.down_t));
      ASSERT_FALSE(neuron_rows_are_paired(n.up, n.down_t));
      const auto x = nonzero_floats(size_t(d), uint64_t(d) * 3);
      for (const int64_t count : {int64_t(0), int64_t(1), int64_t(7), int64_t(200), int64_t(450), hidden}) {
        std::vector<int32_t> active = test::random_subset(hidden, count, uint64_t(count) + 5);
        std::sort(active.begin(), active.end());
        const auto act = nonzero_floats(size_t(std::max<int64_t>(count, 1)), uint64_t(count) + 17);
        const Reference r = reference(n, d, x, act, active);
        const std::vector<double>&ref = r.y, &mag = r.magnitude;
        for (ThreadPool* pool : {&one, &three})
          for (const QuantPath path : paths) {
            const std::string what = std::string(dtype_name(type)) + " d " + std::to_string(d) + " kept " +
                                     std::to_string(count) + " threads " + std::to_string(pool->size()) +
                                     (path == QuantPath::Vnni ? " vnni" : " portable");
            std::vector<float> fused(size_t(d), -7.0f);
            gated_neuron_rows_q8(n.pairs.up, n.pairs.down_t, x.data(), act.data(), active.data(), count,
                                 fused.data(), *pool, path);
            // Prefetches along the rows or as the group stream: the same bits.
            for (PrefetchPattern pattern : {PrefetchPattern::kGroupStream, PrefetchPattern::kAlongRows}) {
              override_prefetch_pattern(pattern);
              std::vector<float> again(size_t(d), -7.0f);
              gated_neuron_rows_q8(n.pairs.up, n.pairs.down_t, x.data(), act.data(), active.data(), count,
                                   again.data(), *pool, path);
              override_prefetch_pattern(std::nullopt);
              ASSERT_EQ(again, fused) << what;
            }
            // The two passes on the unpaired matrices.
            std::vector<float> u(size_t(std::max<int64_t>(count, 1))), two(size_t(d), -7.0f);
            gather_rows_q8(n.up, x.data(), 1, active.data(), count, u.data(), *pool, path);
            for (int64_t k = 0; k < count; ++k) u[size_t(k)] = act[size_t(k)] * u[size_t(k)];
            // (matmul_sparse_input takes the Auto path, so bitwise only
            // where that is `path`.)
            if (path == QuantPath::Vnni || !cpu_has_vnni()) {
              matmul_sparse_input(n.down_t, u.data(), 1, active.data(), count, two.data(), *pool);
              for (int64_t o = 0; o < d; ++o) ASSERT_EQ(fused[size_t(o)], two[size_t(o)]) << what << " out " << o;
            }
            for (int64_t o = 0; o < d; ++o)
              ASSERT_NEAR(fused[size_t(o)], ref[size_t(o)], 0.01 * mag[size_t(o)] + 1e-6) << what << " out " << o;
          }
      }
    }
  }
}

// The kernels of batches (several tokens) on the paired views give bitwise
// what they give on the unpaired matrices: the VNNI gather (Q8_0/Q4_0) or
// the stored-row gather for u, the input-sparse product for y.
void expect_batches_read_the_views(DType type, int64_t d, uint64_t seed) {
  ThreadPool three(3);
  const int64_t hidden = 203, n_tok = 5, count = 120;
  const Neurons n = make_neurons(type, hidden, d, seed);
  std::vector<int32_t> active = test::random_subset(hidden, count, seed + 2);
  std::sort(active.begin(), active.end());
  const auto x = nonzero_floats(size_t(n_tok * d), seed + 6);
  const auto h = nonzero_floats(size_t(n_tok * count), seed + 12);
  auto gather = [&](const WeightMatrix& up, std::vector<float>& u) {
    if (up.packed) gather_rows_q8(up, x.data(), n_tok, active.data(), count, u.data(), three);
    else matmul_gather_rows(up, x.data(), n_tok, active.data(), count, u.data(), three);
  };
  std::vector<float> u_pairs(size_t(n_tok * count)), u_alone(u_pairs.size());
  gather(n.pairs.up, u_pairs);
  gather(n.up, u_alone);
  EXPECT_EQ(u_pairs, u_alone) << dtype_name(type);
  std::vector<float> y_pairs(size_t(n_tok * d)), y_alone(y_pairs.size());
  matmul_sparse_input(n.pairs.down_t, h.data(), n_tok, active.data(), count, y_pairs.data(), three);
  matmul_sparse_input(n.down_t, h.data(), n_tok, active.data(), count, y_alone.data(), three);
  EXPECT_EQ(y_pairs, y_alone) << dtype_name(type);
}

TEST(NeuronRowsQ8, BatchKernelsReadThePairedViews) {
  if (!cpu_has_avx512bw()) GTEST_SKIP() << "needs AVX-512 BW";
  for (const DType type : {DType::Q8_0, DType::Q4_0})
    ASSERT_NO_FATAL_FAILURE(expect_batches_read_the_views(type, 192, 41));
}

// Pairs placed at page ends (kernels/row_placement.h), from inputs placed
// either way: each pair of at most a page ends one (longer pairs stay back
// to back), and the fused kernel and the batch kernels give bit for bit
// what they give on packed pairs. Q8_0 at d 2048: 4352-byte pairs from
// 2176-byte rows placed at page ends.
void expect_page_end_pairs_match(DType type, int64_t d, uint64_t seed) {
  ThreadPool three(3);
  const int64_t hidden = 203, count = 120, n_tok = 5;
  const Neurons n = make_neurons(type, hidden, d, seed);
  const bool relaid = n.up.packed != nullptr;
  const WeightMatrix up_pages = relaid ? packed_for_sparse_input(n.up_file, nullptr, RowPlacement::kPageEnds) : n.up;
  const WeightMatrix down_pages =
      relaid ? packed_for_sparse_input(n.down_t_file, nullptr, RowPlacement::kPageEnds) : n.down_t;
  std::vector<int32_t> active = test::random_subset(hidden, count, seed + 2);
  std::sort(active.begin(), active.end());
  const auto x1 = nonzero_floats(size_t(d), seed + 3);
  const auto act = nonzero_floats(size_t(count), seed + 4);
  const auto x = nonzero_floats(size_t(n_tok * d), seed + 6);
  const auto h = nonzero_floats(size_t(n_tok * count), seed + 12);
  std::vector<float> fused(static_cast<size_t>(d)), u(static_cast<size_t>(n_tok * count)), y(static_cast<size_t>(n_tok * d));
  gated_neuron_rows(n.pairs.up, n.pairs.down_t, x1.data(), act.data(), active.data(), count, fused.data(), three);
  auto gather = [&](const WeightMatrix& up, std::vector<float>& out) {
    if (up.packed) gather_rows_q8(up, x.data(), n_tok, active.data(), count, out.data(), three);
    else matmul_gather_rows(up, x.data(), n_tok, active.data(), count, out.data(), three);
  };
  gather(n.pairs.up, u);
  matmul_sparse_input(n.pairs.down_t, h.data(), n_tok, active.data(), count, y.data(), three);
  for (const bool from_pages : {false, true}) {
    const std::string what = std::string(dtype_name(type)) + (from_pages ? " from page-end rows" : " from packed rows");
    const NeuronRows pairs = from_pages ? paired_neuron_rows(up_pages, down_pages, &three, RowPlacement::kPageEnds)
                                        : paired_neuron_rows(n.up, n.down_t, &three, RowPlacement::kPageEnds);
    ASSERT_TRUE(neuron_rows_are_paired(pairs.up, pairs.down_t)) << what;
    EXPECT_FALSE(can_pair_neuron_rows(pairs.up, pairs.down_t)) << what;
    const uint8_t* first = relaid ? pairs.up.packed : pairs.up.data;
    const uint64_t pair_bytes = 2 * (relaid ? sparse_input_row_stride(type, d) : n.up.row_bytes());
    if (pair_bytes > 4096) {  // longer than a page: back to back
      EXPECT_EQ(pairs.up.row_pitch, pair_bytes) << what;
    } else {
      EXPECT_EQ(pairs.up.row_pitch, 4096u) << what;
      for (int64_t j = 0; j < hidden; ++j)
        ASSERT_EQ((reinterpret_cast<uintptr_t>(first) + uint64_t(j) * 4096 + pair_bytes) % 4096, 0u)
            << what << " pair " << j;
    }
    std::vector<float> fused_pages(size_t(d), -7.0f), u_pages(u.size(), -7.0f), y_pages(y.size(), -7.0f);
    gated_neuron_rows(pairs.up, pairs.down_t, x1.data(), act.data(), active.data(), count, fused_pages.data(),
                      three);
    EXPECT_EQ(fused_pages, fused) << what;
    gather(pairs.up, u_pages);
    EXPECT_EQ(u_pages, u) << what;
    matmul_sparse_input(pairs.down_t, h.data(), n_tok, active.data(), count, y_pages.data(), three);
    EXPECT_EQ(y_pages, y) << what;
  }
}

TEST(NeuronRowsQ8, PairsAtPageEndsGiveTheSameBits) {
  if (!cpu_has_avx512bw()) GTEST_SKIP() << "needs AVX-512 BW";
  for (const DType type : {DType::Q8_0, DType::Q4_0})
    for (const int64_t d : {192, 2048}) ASSERT_NO_FATAL_FAILURE(expect_page_end_pairs_match(type, d, 71));
}

TEST(NeuronRowsDense, PairsAtPageEndsGiveTheSameBits) {
  for (const DType type : {DType::F32, DType::F16, DType::BF16})
    ASSERT_NO_FATAL_FAILURE(expect_page_end_pairs_match(type, 203, 81));
}

TEST(NeuronRowsQ8, PairingNeedsOneShapeAndTypeInTheRowLayout) {
  if (!cpu_has_avx512bw()) GTEST_SKIP() << "needs AVX-512 BW";
  const WeightMatrix up = packed_for_sparse_input(test::random_weight(DType::Q8_0, 64, 128, 1));
  const WeightMatrix wider = packed_for_sparse_input(test::random_weight(DType::Q8_0, 64, 192, 2));
  const WeightMatrix q4 = packed_for_sparse_input(test::random_weight(DType::Q4_0, 64, 128, 3));
  const WeightMatrix file = test::random_weight(DType::Q8_0, 64, 128, 4);
  EXPECT_TRUE(can_pair_neuron_rows(up, up));
  EXPECT_FALSE(can_pair_neuron_rows(up, wider));
  EXPECT_FALSE(can_pair_neuron_rows(up, q4));
  EXPECT_FALSE(can_pair_neuron_rows(up, file));
  EXPECT_THROW(paired_neuron_rows(up, file), std::invalid_argument);
  const NeuronRows pairs = paired_neuron_rows(up, up);
  EXPECT_FALSE(can_pair_neuron_rows(pairs.up, pairs.down_t));  // views are not paired again
  ThreadPool one(1);
  std::vector<float> x(128, 1.0f), y(128), act(1, 1.0f);
  const int32_t row = 3;
  EXPECT_THROW(gated_neuron_rows_q8(up, up, x.data(), act.data(), &row, 1, y.data(), one), std::invalid_argument);
}

TEST(NeuronRowsDense, FusedEqualsTheTwoPassesAndTheReference) {
  ThreadPool one(1), three(3);
  const int64_t hidden = 611;
  for (const DType type : {DType::F32, DType::F16, DType::BF16}) {
    for (const int64_t d : {192, 203, 576}) {
      const Neurons n = make_neurons(type, hidden, d, uint64_t(d) + uint64_t(type));
      ASSERT_TRUE(neuron_rows_are_paired(n.pairs.up, n.pairs.down_t));
      ASSERT_FALSE(neuron_rows_are_paired(n.up, n.down_t));
      const auto x = nonzero_floats(size_t(d), uint64_t(d) * 5);
      for (const int64_t count : {int64_t(0), int64_t(1), int64_t(7), int64_t(200), int64_t(450), hidden}) {
        std::vector<int32_t> active = test::random_subset(hidden, count, uint64_t(count) + 6);
        std::sort(active.begin(), active.end());
        const auto act = nonzero_floats(size_t(std::max<int64_t>(count, 1)), uint64_t(count) + 19);
        const Reference r = reference(n, d, x, act, active);
        for (ThreadPool* pool : {&one, &three}) {
          const std::string what = std::string(dtype_name(type)) + " d " + std::to_string(d) + " kept " +
                                   std::to_string(count) + " threads " + std::to_string(pool->size());
          std::vector<float> fused(size_t(d), -7.0f);
          gated_neuron_rows(n.pairs.up, n.pairs.down_t, x.data(), act.data(), active.data(), count, fused.data(),
                            *pool);
          // Prefetches along the rows or as the group stream: the same bits.
          for (PrefetchPattern pattern : {PrefetchPattern::kGroupStream, PrefetchPattern::kAlongRows}) {
            override_prefetch_pattern(pattern);
            std::vector<float> again(size_t(d), -7.0f);
            gated_neuron_rows(n.pairs.up, n.pairs.down_t, x.data(), act.data(), active.data(), count,
                              again.data(), *pool);
            override_prefetch_pattern(std::nullopt);
            ASSERT_EQ(again, fused) << what;
          }
          std::vector<float> u(size_t(std::max<int64_t>(count, 1))), two(size_t(d), -7.0f);
          matmul_gather_rows(n.up, x.data(), 1, active.data(), count, u.data(), *pool);
          for (int64_t k = 0; k < count; ++k) u[size_t(k)] = act[size_t(k)] * u[size_t(k)];
          matmul_sparse_input(n.down_t, u.data(), 1, active.data(), count, two.data(), *pool);
          for (int64_t o = 0; o < d; ++o) {
            ASSERT_EQ(fused[size_t(o)], two[size_t(o)]) << what << " out " << o;
            // fp32 sums of fp32 products of the stored weights: the order
            // of the sums is all that differs from the reference.
            ASSERT_NEAR(fused[size_t(o)], r.y[size_t(o)], 1e-5 * r.magnitude[size_t(o)] + 1e-7)
                << what << " out " << o;
          }
        }
      }
    }
  }
}

TEST(NeuronRowsDense, BatchKernelsReadThePairedViews) {
  const int64_t hidden = 203, d = 203;
  for (const DType type : {DType::F32, DType::F16, DType::BF16}) {
    ASSERT_NO_FATAL_FAILURE(expect_batches_read_the_views(type, d, 61));
    // Row r of a view is row r of its matrix (readers that decode rows).
    const Neurons n = make_neurons(type, hidden, d, 61);
    std::vector<float> row_pair(static_cast<size_t>(d)), row_alone(static_cast<size_t>(d));
    for (const int64_t r : {int64_t(0), int64_t(77), hidden - 1}) {
      read_row(n.pairs.down_t, r, row_pair.data());
      read_row(n.down_t, r, row_alone.data());
      EXPECT_EQ(row_pair, row_alone) << dtype_name(type) << " row " << r;
    }
  }
}

TEST(NeuronRowsDense, PairingNeedsOneShapeAndTypeAsStored) {
  const WeightMatrix up = test::random_weight(DType::BF16, 64, 128, 1);
  const WeightMatrix f16 = test::random_weight(DType::F16, 64, 128, 2);
  const WeightMatrix taller = test::random_weight(DType::BF16, 65, 128, 3);
  WeightMatrix tiles = test::random_weight(DType::BF16, 64, 128, 4);
  pack_row_tiles(tiles, nullptr);
  EXPECT_TRUE(can_pair_neuron_rows(up, up));
  EXPECT_FALSE(can_pair_neuron_rows(up, f16));
  EXPECT_FALSE(can_pair_neuron_rows(up, taller));
  if (tiles.packed) {
    EXPECT_FALSE(can_pair_neuron_rows(up, tiles));
  }
  if (cpu_has_avx512bw()) {
    const WeightMatrix q8 = packed_for_sparse_input(test::random_weight(DType::Q8_0, 64, 128, 5));
    EXPECT_FALSE(can_pair_neuron_rows(q8, up));
  }
  EXPECT_THROW(paired_neuron_rows(up, f16), std::invalid_argument);
  const NeuronRows pairs = paired_neuron_rows(up, up);
  EXPECT_FALSE(can_pair_neuron_rows(pairs.up, pairs.down_t));
  ThreadPool one(1);
  std::vector<float> x(128, 1.0f), y(128), act(1, 1.0f);
  const int32_t row = 3;
  EXPECT_THROW(gated_neuron_rows(up, up, x.data(), act.data(), &row, 1, y.data(), one), std::invalid_argument);
  EXPECT_THROW(gated_neuron_rows_q8(pairs.up, pairs.down_t, x.data(), act.data(), &row, 1, y.data(), one),
               std::invalid_argument);
}

}  // namespace
}  // namespace ffn
