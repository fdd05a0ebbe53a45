#include "ffn/sparse_batch.h"

#include <vector>

#include "core/aligned_buffer.h"

namespace ffn {

bool batch_runs_dense(const WeightMatrix& w, const SparseActivations& p, int64_t width) {
  const bool has_weights = w.data != nullptr || w.packed != nullptr;
  return p.n_tok > 1 && has_weights && width > 0 &&
         double(p.n_active()) >= kDenseUnionFraction * double(width);
}

void matmul_masked(std::initializer_list<MaskedJob> jobs, const SparseActivations& p, int64_t width,
                   ThreadPool& pool) {
  const int64_t n = p.n_tok, na = p.n_active();
  thread_local AlignedVector<float> masked;
  masked.assign(static_cast<size_t>(n * width), 0.0f);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t k = 0; k < na; ++k) masked[size_t(t * width + p.active[size_t(k)])] = p.values[size_t(t * na + k)];
  std::vector<MatmulJob> many;
  for (const MaskedJob& j : jobs) many.push_back({j.w, masked.data(), j.y});
  matmul_many(many.data(), int64_t(many.size()), n, pool);
}

}  // namespace ffn
