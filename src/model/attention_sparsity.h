// Activation sparsity on the attention projections' inputs, as TEAL (all of
// q/k/v and o) and CHESS's selective sparsification (q and o only: CHESS
// keeps the k/v inputs dense because errors there persist in the KV cache)
// apply it. The sparsified projections are held transposed, so a dropped
// input channel skips one contiguous weight row (matmul_sparse_input).
#pragma once

#include "ffn/sparse_activations.h"
#include "ffn/sparsity_meter.h"
#include "kernels/weight_matrix.h"

namespace ffn {

struct AttentionSparsity {
  float in_threshold = 0;   // on |x| of the q/k/v input; 0 = dense
  bool q_only = false;      // CHESS: only q's input is sparsified
  float out_threshold = 0;  // on |x| of the o input; 0 = dense
  // W^T, set where the matching threshold is > 0: q's alone (q_only), else
  // q, k and v side by side ([dim, dim + 2 kv_dim], concat_columns: one
  // product, one row per active input).
  WeightMatrix wq_t, wqkv_t, wo_t;
  SparsitySite* in_site = nullptr;
  SparsitySite* out_site = nullptr;
  SparseActivations packed;  // scratch
};

}  // namespace ffn
