// The sparse tail of a gate-sparsified FFN in one pass, for one token: the
// neurons that CATS (Lee et al. 2024), CHESS (He et al. 2024) or Spark
// Transformer's statistical top-k keep are known once the dense gate has
// run, and each kept neuron j needs exactly two rows, its row of W_up and
// its column of W_down (a row of W_down^T):
//   u_j = W_up[j] . x,   h_j = SiLU(g_j) * u_j,   y += h_j * W_down^T[j].
//
// Why one pass over paired rows: the two-pass form (a gather for u, then the
// input-sparse product for y) reads rows of d_model weights (2176 bytes for
// Q8_0, 4096 for BF16 at d_model 2048) scattered over two matrices. On the
// Zen 5 VM, a random half of 2176-byte rows read at 0.74-0.79 of a
// sequential read of the same bytes, and of 4352-byte rows at 0.87-0.97
// (the read-pattern probe of the ninth session, 2 threads, prefetched as
// kernels/group_prefetch.h streams). Here neuron j's up row and down row sit
// side by side, so a kept neuron is one read of twice the row, prefetched as
// one stream, and the product costs one wake-up of the workers instead of two.
//
// Layout: row j of up at j * pitch, row j of down^T right after it, each
// matrix a WeightMatrix view with row_pitch = pitch, so the kernels of
// batches (gathers and input-sparse products) read the views as is. The
// pitch is 2 rows, or with RowPlacement::kPageEnds (row_placement.h), for
// pairs of at most 4 KiB, one page per pair, the pair ending it.
//  - Q8_0/Q4_0: both in the VNNI row layout of kernels/sparse_input_q8.h
//    (the views' `packed`), paired by can_pair_neuron_rows when both are.
//  - F32/F16/BF16: rows as stored (the views' `data`).
//
// Arithmetic: exactly that of the two passes on the same pool (Q8_0/Q4_0:
// the gather's int8 x blocks and tile for u, the input-sparse kernel's int8
// groups of 8 rows for y; F32/F16/BF16: matmul.cpp's gather tile for u and
// sparse_matmul.cpp's 8-row accumulation for y; both: the same split of the
// kept list over threads), so the result is bitwise the two-pass result.
#pragma once

#include <cstdint>

#include "kernels/matmul_quant.h"
#include "kernels/row_placement.h"
#include "kernels/weight_matrix.h"

namespace ffn {

class ThreadPool;

struct NeuronRows {
  WeightMatrix up;      // [hidden, d_model], a view (row_pitch: the pairs' pitch)
  WeightMatrix down_t;  // [hidden, d_model], the view of the rows beside up's
};

// True when up and down_t (each [hidden, d_model]) have one type and shape
// and rows of their own: both Q8_0/Q4_0 in the input-sparse layout
// (packed_for_sparse_input: packed set, data null), or both F32/F16/BF16 rows
// in `data` (no packed tiles); and are not already the two views of one
// pairing.
bool can_pair_neuron_rows(const WeightMatrix& up, const WeightMatrix& down_t);

// up's and down_t's rows copied into one buffer, pair by pair, the pairs
// placed as asked (rows split over `pool` when given); the inputs' buffers
// are released with them.
NeuronRows paired_neuron_rows(const WeightMatrix& up, const WeightMatrix& down_t, ThreadPool* pool = nullptr,
                              RowPlacement placement = sparse_row_placement());

// True when up and down_t are the two views of one paired_neuron_rows.
bool neuron_rows_are_paired(const WeightMatrix& up, const WeightMatrix& down_t);

// One token: y[o] = sum_k act[k] * dot(up[active[k]], x) * down_t[active[k], o]
// for o < d_model (y overwritten; zeros when n_active = 0). active[] is
// distinct, ascending, within [0, hidden). Requires
// neuron_rows_are_paired(up, down_t) (std::invalid_argument otherwise).
void gated_neuron_rows(const WeightMatrix& up, const WeightMatrix& down_t, const float* x, const float* act,
                       const int32_t* active, int64_t n_active, float* y, ThreadPool& pool);

// The kernels gated_neuron_rows picks by type. The Q8_0/Q4_0 one needs
// cpu_has_avx512bw(); `path` as for gather_rows_q8.
void gated_neuron_rows_q8(const WeightMatrix& up, const WeightMatrix& down_t, const float* x, const float* act,
                          const int32_t* active, int64_t n_active, float* y, ThreadPool& pool,
                          QuantPath path = QuantPath::Auto);
void gated_neuron_rows_dense(const WeightMatrix& up, const WeightMatrix& down_t, const float* x, const float* act,
                             const int32_t* active, int64_t n_active, float* y, ThreadPool& pool);

}  // namespace ffn
