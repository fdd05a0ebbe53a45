// Paired neuron rows and the choice of fused kernel (why and layout:
// neuron_rows.h).
#include "kernels/neuron_rows.h"

#include <cstring>
#include <memory>
#include <stdexcept>

#include "core/mapped_file.h"
#include "core/thread_pool.h"
#include "kernels/relaid_chunk.h"
#include "kernels/sparse_input_q8.h"

namespace ffn {

namespace {

bool is_dense_type(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }

// Q8_0/Q4_0 rows in the input-sparse layout (in `packed`, nothing in `data`).
bool in_row_layout(const WeightMatrix& w) {
  return (w.type == DType::Q8_0 || w.type == DType::Q4_0) && w.packed != nullptr && w.data == nullptr;
}

// F32/F16/BF16 rows as stored, in `data` (no packed tiles beside them).
bool in_stored_rows(const WeightMatrix& w) { return is_dense_type(w.type) && w.data != nullptr && w.packed == nullptr; }

bool same_shape(const WeightMatrix& a, const WeightMatrix& b) {
  return a.type == b.type && a.rows == b.rows && a.cols == b.cols && a.rows > 0 && a.cols > 0;
}

// Bytes of one row where the kernels read it: the input-sparse layout's
// stride, or the stored row.
uint64_t row_size(const WeightMatrix& w) {
  return in_row_layout(w) ? sparse_input_row_stride(w.type, w.cols) : w.row_bytes();
}

const uint8_t* rows_start(const WeightMatrix& w) { return in_row_layout(w) ? w.packed : w.data; }

// Bytes from one of w's rows to the next where the kernels read it.
uint64_t row_step(const WeightMatrix& w) { return in_row_layout(w) ? sparse_input_row_pitch(w) : w.pitch(); }

}  // namespace

bool can_pair_neuron_rows(const WeightMatrix& up, const WeightMatrix& down_t) {
  if (!same_shape(up, down_t) || neuron_rows_are_paired(up, down_t)) return false;
  if (in_row_layout(up) && in_row_layout(down_t)) return up.cols % kRelaidChunk == 0;
  return in_stored_rows(up) && in_stored_rows(down_t);
}

NeuronRows paired_neuron_rows(const WeightMatrix& up, const WeightMatrix& down_t, ThreadPool* pool,
                              RowPlacement placement) {
  if (!can_pair_neuron_rows(up, down_t))
    throw std::invalid_argument("paired_neuron_rows: up and down_t are not one shape and type, each with rows of "
                                "its own (Q8_0/Q4_0 in the input-sparse layout, or F32/F16/BF16 as stored)");
  const uint64_t size = row_size(up), up_step = row_step(up), down_step = row_step(down_t);
  const uint8_t* from_up = rows_start(up);
  const uint8_t* from_down = rows_start(down_t);
  PlacedRows placed = place_rows(up.rows, 2 * size, placement);
  std::shared_ptr<uint8_t> buf = std::move(placed.first);
  const uint64_t pitch = placed.pitch;
  auto copy = [&](int64_t b, int64_t e) {
    for (int64_t j = b; j < e; ++j) {
      std::memcpy(buf.get() + uint64_t(j) * pitch, from_up + uint64_t(j) * up_step, size);
      std::memcpy(buf.get() + uint64_t(j) * pitch + size, from_down + uint64_t(j) * down_step, size);
    }
  };
  if (pool) pool->parallel_for(up.rows, [&](int64_t b, int64_t e, int) { copy(b, e); });
  else copy(0, up.rows);
  // Stored rows read in place from a file mapping: their pages are no longer
  // needed (re-laid rows live in buffers of their own, freed with them).
  for (const WeightMatrix* w : {&up, &down_t})
    if (w->data && !w->owned) release_mapped_pages(w->data, w->bytes());
  NeuronRows out;
  out.up = WeightMatrix{.type = up.type, .rows = up.rows, .cols = up.cols};
  out.down_t = WeightMatrix{.type = down_t.type, .rows = down_t.rows, .cols = down_t.cols};
  const uint8_t*& up_rows = in_row_layout(up) ? out.up.packed : out.up.data;
  const uint8_t*& down_rows = in_row_layout(up) ? out.down_t.packed : out.down_t.data;
  up_rows = buf.get();
  down_rows = buf.get() + size;
  out.up.row_pitch = out.down_t.row_pitch = pitch;
  std::shared_ptr<const void>& up_owner = in_row_layout(up) ? out.up.packed_owned : out.up.owned;
  std::shared_ptr<const void>& down_owner = in_row_layout(up) ? out.down_t.packed_owned : out.down_t.owned;
  up_owner = buf;
  down_owner = std::move(buf);
  return out;
}

bool neuron_rows_are_paired(const WeightMatrix& up, const WeightMatrix& down_t) {
  if (!same_shape(up, down_t)) return false;
  const bool relaid = in_row_layout(up) && in_row_layout(down_t);
  if (!relaid && !(in_stored_rows(up) && in_stored_rows(down_t))) return false;
  const uint64_t size = row_size(up);
  return up.row_pitch >= 2 * size && down_t.row_pitch == up.row_pitch && rows_start(down_t) == rows_start(up) + size;
}

void gated_neuron_rows(const WeightMatrix& up, const WeightMatrix& down_t, const float* x, const float* act,
                       const int32_t* active, int64_t n_active, float* y, ThreadPool& pool) {
  if (in_row_layout(up)) gated_neuron_rows_q8(up, down_t, x, act, active, n_active, y, pool);
  else gated_neuron_rows_dense(up, down_t, x, act, active, n_active, y, pool);
}

}  // namespace ffn
