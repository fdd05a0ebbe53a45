// Gathered rows of a Q8_0 or Q4_0 matrix with integer dot products (int8
// activations, hence "q8", whichever the weights' type): the up rows of
// the neurons that CATS (Lee et al. 2024), CHESS (Zhang et al. 2024) and
// Spark Transformer's statistical top-k keep, read one token at a time.
//
// Why not the file-layout gather (matmul_quant_gather_rows): a file row is
// 34-byte blocks, so every block is an unaligned 32-byte load, a sign
// trick, a scalar fp16 scale and its own FMA: ~10 instructions per 32
// weights. On scattered 2176-byte rows (TinyLlama's up, 50% kept) that
// kernel ran at 26 GB/s on 2 threads where the input-sparse VNNI kernel
// read the same rows at 39 GB/s (BM_GatherRows/8/50 vs BM_SparseInput/8/50).
//
// Here the rows are stored in the row layout of kernels/sparse_input_q8.h
// (fp16 block scales first, then the quant bytes as w + zero, 64-byte
// aligned, outputs permuted within each chunk of 64); packed_for_sparse_input
// makes it from any Q8_0 or Q4_0 [rows, cols] matrix with cols a multiple of
// 64. Q4_0 chunks are 32 bytes, expanded to the same 64 (relaid_chunk.h).
// Per 64 weights of a row: one aligned load, one vpdpbusd (or its AVX-512BW
// form, kernels/byte_dot.h) against x's int8
// bytes permuted the same way, one conversion and one FMA with the two
// blocks' scales d_w * d_x spread over their lanes. Lane l of a chunk holds
// outputs of block (l >> 1) & 1 (the layout swaps k and L in 16k + 4L + m).
// The zero point z (128 for Q8_0, 8 for Q4_0): sum_j (w_j + z) q_j =
// sum_j w_j q_j + z sum_j q_j, so each row subtracts z * sum_b d_wb * d_xb *
// sum(q_b) once at its end.
//
// The result equals the file-layout VNNI gather's up to fp32 summation
// order: both quantize x to int8 per block of 32 (QuantizedActivations) and
// sum exact integer block dots scaled by d_w * d_x.
#pragma once

#include <cstdint>

#include "kernels/matmul_quant.h"
#include "kernels/weight_matrix.h"

namespace ffn {

class ThreadPool;

// For every token t and i in [0, n_rows):
//   y[t * n_rows + i] = dot(W[rows[i], :], x[t * w.cols .. + w.cols])
// w: a Q8_0 or Q4_0 matrix re-laid by packed_for_sparse_input (w.packed; w.data may
// be null). Only the listed rows are read. Threads split the list as every
// gather does (for_each_list_piece, kernels/sparse_matmul.h); every output
// is one piece's, so the result does not depend on who computed it. Needs
// cpu_has_avx512bw(); `path` Vnni takes vpdpbusd, Portable its AVX-512BW
// form (kernels/byte_dot.h: the same integers), Auto the first this CPU has.
void gather_rows_q8(const WeightMatrix& w, const float* x, int64_t n_tok, const int32_t* rows, int64_t n_rows,
                    float* y, ThreadPool& pool, QuantPath path = QuantPath::Auto);

}  // namespace ffn
