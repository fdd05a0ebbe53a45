#include "kernels/weight_matrix.h"

#include "kernels/matmul.h"

namespace ffn {

void matmul(const WeightMatrix& w, const float* x, int64_t n_tok, float* y, ThreadPool& pool) {
  matmul_f32(x, n_tok, w.cols, w.data, w.rows, y, pool);
}

}  // namespace ffn
