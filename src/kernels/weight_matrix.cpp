#include "kernels/weight_matrix.h"

#include "kernels/convert.h"
#include "kernels/matmul.h"
#include "kernels/matmul_quant.h"

namespace ffn {

void matmul(const WeightMatrix& w, const float* x, int64_t n_tok, float* y, ThreadPool& pool) {
  switch (w.type) {
    case DType::Q8_0:
    case DType::Q4_0:
      matmul_quant(w.type, x, n_tok, w.cols, w.data, w.rows, y, pool);
      return;
    default:
      matmul_dense(w.type, x, n_tok, w.cols, w.data, w.rows, y, pool);
      return;
  }
}

void read_row(const WeightMatrix& w, int64_t r, float* out) {
  dequantize_row(w.type, w.row(r), out, uint64_t(w.cols));
}

}  // namespace ffn
