// WeightMatrix: a [rows, cols] weight in its stored type (F32, F16, BF16,
// Q8_0, Q4_0), usually read in place from the memory-mapped file, plus
// matmul(), which picks the kernel for that type. Layers hold WeightMatrix
// values and never ask which kernel runs.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>

#include "core/dtype.h"

namespace ffn {

class ThreadPool;

struct WeightMatrix {
  DType type = DType::F32;
  int64_t rows = 0;  // outputs
  int64_t cols = 0;  // inputs
  const uint8_t* data = nullptr;
  std::shared_ptr<const void> owned = nullptr;  // set when the data is not in the file mapping
  // The same weights in row tiles for the VNNI kernel (kernels/packed_quant.h),
  // or null. When set, matmul reads it instead of `data`; everything else
  // (row(), gathers, conversion) reads `data`. A transposed Q8_0 matrix for
  // matmul_sparse_input may instead hold the layout of
  // kernels/sparse_input_q8.h here, with `data` null (nothing else reads it).
  const uint8_t* packed = nullptr;
  std::shared_ptr<const void> packed_owned = nullptr;
  // Bytes from one row to the next when the rows are interleaved with
  // another matrix's (a neuron's up row beside its down column,
  // kernels/neuron_rows.h) or each end a 4 KiB page (kernels/row_placement.h):
  // in `packed` when it holds the input-sparse layout (data null), else in
  // `data`. 0: rows follow each other.
  uint64_t row_pitch = 0;

  uint64_t row_bytes() const { return dtype_row_bytes(type, uint64_t(cols)); }
  uint64_t bytes() const { return row_bytes() * uint64_t(rows); }
  // From one row of `data` to the next.
  uint64_t pitch() const { return row_pitch ? row_pitch : row_bytes(); }
  const uint8_t* row(int64_t r) const { return data + uint64_t(r) * pitch(); }
};

// y[n_tok, rows] = x[n_tok, cols] * W^T (matmul_many with one job).
void matmul(const WeightMatrix& w, const float* x, int64_t n_tok, float* y, ThreadPool& pool);

// Several independent products in one pass of the thread pool: for each
// job, y[n_tok, w.rows] = x[n_tok, w.cols] * w^T. Threads claim equal
// pieces of the jobs' weight bytes (whole row tiles), so a layer's small
// products (gate and up; q, k and v; the experts a token picked) cost one
// wake-up of the workers instead of one each.
struct MatmulJob {
  const WeightMatrix* w;
  const float* x;
  float* y;
};
void matmul_many(const MatmulJob* jobs, int64_t count, int64_t n_tok, ThreadPool& pool);

// Row r of W decoded to fp32 (an embedding lookup).
void read_row(const WeightMatrix& w, int64_t r, float* out);

// W^T as a new owned WeightMatrix ([cols, rows]) in the same type, for the
// input-sparse kernel (matmul_sparse_input reads one row of W^T per active
// input). Rows are decoded to fp32, transposed and re-encoded with
// encode_row: exact for F32, F16 and BF16; Q8_0/Q4_0 are re-quantized in
// blocks along the new rows, a second rounding on top of the original one.
// If the type is Q8_0/Q4_0 and w.rows (the new row length) is not a multiple
// of 32, the result is F16 instead (as transform/retype does). Column panels
// are split over `pool` when given.
WeightMatrix transposed(const WeightMatrix& w, ThreadPool* pool = nullptr);

// Columns [c0, c0 + n) of W decoded to fp32 as n rows of W^T, w.rows floats
// each, into out. c0 and n cover whole blocks of a quantized type (n may end
// at w.cols). transposed() runs it on panels of kTransposePanel columns.
inline constexpr int64_t kTransposePanel = 64;
void transposed_columns(const WeightMatrix& w, int64_t c0, int64_t n, float* out);

// w with its rows copied into an allocation of its own (huge pages for large
// matrices, as transposed() makes) and the file pages they came from released:
// for weights read in scattered row order (gathered rows), where every 4 KiB
// page of a file mapping costs a TLB miss. Unchanged if w already owns its rows.
WeightMatrix with_own_rows(WeightMatrix w);

// The parts side by side as a new owned matrix [rows, sum of cols]: row r is
// the parts' rows r one after the other. Transposed matrices that read the
// same input become one, so an active input is one longer row — a longer
// contiguous read, and one product instead of several (TEAL's q/k/v, gate/up).
// Parts of one type whose cols are whole blocks are copied as bytes; parts
// of mixed types (a file may keep attn_v at a higher precision than attn_q)
// are joined as F32, which holds every type's values exactly. The parts
// must have the same rows (std::invalid_argument otherwise).
WeightMatrix concat_columns(std::initializer_list<const WeightMatrix*> parts);

}  // namespace ffn
