// Transposed Q8_0 and Q4_0 weights re-laid for the VNNI input-sparse kernel
// behind matmul_sparse_input (TEAL's inputs of every linear layer, the down
// projection of CATS and CHESS). ("q8": the int8 activations of its integer
// dot products, whichever the weights' type.)
//
// Why: the file-layout kernel (sparse_matmul.cpp) widens every weight byte
// to fp32 and spends one FMA per weight and active row, ~4 weight bytes per
// vector instruction. That is compute-bound at ~60% of the dense VNNI
// kernels' bandwidth, and a skipped row saves bytes that the kernel could
// not have read fast anyway. Here the products are integer dot products:
//
//  - 4 active rows are interleaved in registers (two rounds of byte and word
//    unpacks), so one vpdpbusd multiplies 4 rows' bytes of 16 outputs with
//    4 activation bytes;
//  - activations are quantized per group of 8 active rows and output block b
//    of 32, with the rows' block scales folded in:
//      a_jb = x_j * d_jb,  A_gb = max_{j in g} |a_jb| / 127,
//      q_jb = round(a_jb / A_gb)  (int8),
//      y_o += A_gb * sum_{j in g} q_jb * w_jo      (exact integer sum);
//    so one conversion and one FMA per 16 outputs serve 8 rows.
// The error is one int8 rounding of each a_jb relative to the largest of its
// group: the same order as the dense VNNI path's int8 activation blocks.
//
// Layout (one buffer; rows of row_stride bytes, 64-byte aligned, back to
// back or each ending on a 4 KiB boundary: `placement`, row_placement.h):
//   row j:  the n_out/32 fp16 block scales d_jb, zero-padded to 64 bytes,
//           then the quant bytes in chunks of 64 outputs. Each weight is
//           stored unsigned, w + zero: Q8_0 w XOR 0x80 (w + 128, as in
//           packed_quant.h), Q4_0 its file nibble (w + 8). Chunk position
//           p = 16L + 4k + m holds the weight of output 16k + 4L + m. Q8_0
//           stores position p in byte p of the chunk's 64; Q4_0 packs the
//           chunk into 32 bytes, position p < 32 in the low nibble of byte p
//           and p + 32 in its high nibble (kernels/relaid_chunk.h expands
//           them). The unpacks leave row quadruples in lane order (128-bit
//           lane L, dword m) of vector k; this order makes vector k hold
//           outputs 16k .. 16k+15 of the chunk in order.
// Scales first: a row is one stream (scales, then weights) for the hardware
// and software prefetchers.
// The zero point: sum_j q_j (w_j + z) = sum_j q_j w_j + z sum_j q_j; the
// second term is the same for all 32 outputs of a block and is subtracted
// once per block at the end.
//
// Q4_0 reads half the bytes of Q8_0 for the same arithmetic; the file-layout
// kernel ran Q4_0 at ~45% of the read bandwidth (BM_SparseInput/2/50), so
// a TEAL model in Q4_0 decoded slower than dense.
#pragma once

#include <cstdint>
#include <initializer_list>

#include "kernels/matmul_quant.h"
#include "kernels/row_placement.h"
#include "kernels/weight_matrix.h"

namespace ffn {

// True when wt (a transposed matrix, [n_in, n_out]) can take this layout
// here: Q8_0 or Q4_0, n_out a multiple of 64, and a CPU with AVX-512 BW
// (the dot products: vpdpbusd with VNNI, else its exact AVX-512BW form,
// kernels/byte_dot.h).
bool can_pack_sparse_input(const WeightMatrix& wt);

// wt with `packed` set to the layout above and `data` dropped (the kernel
// reads only the layout; keeping both would double the memory of every
// sparsified matrix). If wt.data is a file mapping its pages are released.
// Unchanged when !can_pack_sparse_input(wt). Rows are split over `pool`.
WeightMatrix packed_for_sparse_input(WeightMatrix wt, ThreadPool* pool = nullptr,
                                     RowPlacement placement = sparse_row_placement());

// The parts' columns side by side ([n_in, sum of n_out], as concat_columns
// would join them) in the layout, without building the joined matrix first.
// When the parts cannot take the layout: their concat_columns (or the one
// part, unchanged). File pages of packed parts are released.
WeightMatrix packed_for_sparse_input(std::initializer_list<const WeightMatrix*> parts, ThreadPool* pool = nullptr,
                                     RowPlacement placement = sparse_row_placement());

// The transposes of the parts (each W [rows_i, cols], same cols and type)
// side by side in the layout, [cols, sum of rows_i]: the bytes of
// packed_for_sparse_input({&transposed(a), &transposed(b), ...}), made panel
// by panel without the transposed copies (at load, each would be a fresh
// allocation zeroed, written and read once). File pages of the parts are
// released. Requires can_pack_transposed_for_sparse_input(parts).
bool can_pack_transposed_for_sparse_input(std::initializer_list<const WeightMatrix*> parts);
WeightMatrix packed_transposed_for_sparse_input(std::initializer_list<const WeightMatrix*> parts,
                                                ThreadPool* pool = nullptr,
                                                RowPlacement placement = sparse_row_placement());

// One token prefetches its rows a few groups ahead (kernels/group_prefetch.h).

// Bytes of one row of the layout for weights of `type` (Q8_0 or Q4_0), and
// of its leading block scales (where the quant bytes start).
uint64_t sparse_input_row_stride(DType type, int64_t n_out);
uint64_t sparse_input_scale_bytes(int64_t n_out);
// Bytes from one of wt's rows to the next in wt.packed (its row_pitch,
// else the row stride).
uint64_t sparse_input_row_pitch(const WeightMatrix& wt);

// The single-threaded body: y[t * y_stride + o] = sum_k x[t * x_stride + k] *
// wt[active[k], o] for o in [c0, c1), tokens t < n_tok. c0 and c1 are
// multiples of 64. wt was packed by packed_for_sparse_input. `path`: Vnni
// or Portable (the AVX-512BW form; the same integers), Auto the first this
// CPU has.
void sparse_input_q8_columns(const WeightMatrix& wt, const float* x, int64_t x_stride, int64_t n_tok,
                             const int32_t* active, int64_t n_active, float* y, int64_t y_stride, int64_t c0,
                             int64_t c1, QuantPath path = QuantPath::Auto);

}  // namespace ffn
