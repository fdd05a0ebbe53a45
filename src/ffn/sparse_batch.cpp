#include "ffn/sparse_batch.h"

#include <vector>

#include "core/aligned_buffer.h"

namespace ffn {

bool batch_runs_dense(const WeightMatrix& w, const SparseActivations& p, int64_t width) {
  const bool has_weights = w.data != nullptr || w.packed != nullptr;
  return p.n_tok > 1 && has_weights && width > 0 &&
         double(p.n_active()) >= kDenseUnionFraction * double(width);
}

void matmul_masked(std::initializer_list<MaskedJob> jobs, const float* x, const KeepRule& rule, int64_t n_tok,
                   int64_t width, ThreadPool& pool) {
  thread_local AlignedVector<float> masked;
  masked.resize(static_cast<size_t>(n_tok * width));
  mask_kept(x, n_tok, width, rule, masked.data());
  std::vector<MatmulJob> many;
  for (const MaskedJob& j : jobs) many.push_back({j.w, masked.data(), j.y});
  matmul_many(many.data(), int64_t(many.size()), n_tok, pool);
}

}  // namespace ffn
