// Writes an activation-sparsity plan into a model file (`ffn convert
// --sparsity`): the thresholds as ffn.sparsity.* metadata and the matrices
// the plan reads by input stored transposed (layout and keys:
// model/sparsity_plan.h), so the file loads straight into its sparse form.
#pragma once

#include "io/model_source.h"
#include "model/sparsity_plan.h"

namespace ffn {

// src with the plan written in: metadata added, matrices transposed where
// the plan reads them by input. (Q8_0/Q4_0 transposed matrices are
// re-encoded along their new rows.)
ModelSource with_sparsity_plan(const ModelSource& src, const SparsityPlan& plan, ThreadPool* pool);

}  // namespace ffn
