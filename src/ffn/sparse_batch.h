// How a batch of several tokens (prefill, perplexity, batched decode) runs
// an input-sparse product. One token reads only its active rows of W^T
// (matmul_sparse_input). A batch reads the UNION of its tokens' active
// channels, which grows fast with the batch (at 50% per-token sparsity and
// independent channels, 4 tokens already keep ~94%), and the input-sparse
// kernel decodes each weight for fewer tokens at a time than the packed
// dense kernels: TinyLlama Q8_0, 64-token prefill at 50% TEAL ran at 71-95
// tok/s through the union vs 250-290 dense (docs/BENCHMARKS.md).
//
// So where the row-major weight is at hand (the model was sparsified at
// run time; a converted file may hold only W^T) and the union keeps at
// least kDenseUnionFraction of the inputs, the batch runs the dense kernels
// on the masked activations instead: the tokens' values scattered back to
// [n_tok, width] with every dropped entry 0. Per-token semantics are the
// same (a dropped input contributes 0 either way); only the rounding of the
// kernels differs.
#pragma once

#include <cstdint>
#include <initializer_list>

#include "ffn/sparse_activations.h"
#include "kernels/weight_matrix.h"

namespace ffn {

class ThreadPool;

// A third: the dense kernels are ~3x faster per weight on a batch than the
// input-sparse kernel (the prefill figures above).
constexpr double kDenseUnionFraction = 1.0 / 3.0;

// True when p (a packed batch over `width` inputs) should run dense on w.
bool batch_runs_dense(const WeightMatrix& w, const SparseActivations& p, int64_t width);

// For each job, y[n_tok, w.rows] = W * masked x, where masked x is x [n_tok,
// width] with every entry `rule` drops set to 0 (kernels/activation_mask.h).
// One pass (matmul_many) for all jobs; they share the masked input.
struct MaskedJob {
  const WeightMatrix* w;
  float* y;
};
void matmul_masked(std::initializer_list<MaskedJob> jobs, const float* x, const KeepRule& rule, int64_t n_tok,
                   int64_t width, ThreadPool& pool);

}  // namespace ffn
