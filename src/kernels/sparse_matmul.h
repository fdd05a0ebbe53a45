// Matrix products that skip weight rows: the kernels behind activation
// sparsity (CHESS: channel-wise thresholding and selective sparsification;
// Spark Transformer's statistical top-k; TEAL and CATS as peers). A zero
// activation multiplies one weight row (input sparsity, against a transposed
// weight) or makes one output unnecessary (output sparsity, a gathered row):
// either way the skipped rows' bytes are never read, so decode, which is
// bound by memory bandwidth, gets faster in proportion.
//
//  - matmul_gather_rows: only some outputs are wanted (e.g. the up/gate rows
//    predicted active). Reads the listed rows of W [n_out, n_in] and runs the
//    dense kernels (matmul_dense_rows, the VNNI/portable quantized rows) on
//    each run of consecutive listed rows.
//  - matmul_sparse_input: only some inputs are non-zero (the down projection
//    after a sparse activation). W^T [n_in, n_out] has one contiguous row per
//    input, so y = sum over active inputs k of x_k * W^T[k, :] streams only the
//    active rows, decoding them in registers (Highway, runtime ISA dispatch).
//
// Kernels trust their callers: row lists are distinct, ascending and in range;
// shapes are checked where the weights are built.
#pragma once

#include <cstdint>
#include <functional>

namespace ffn {

class ThreadPool;
struct WeightMatrix;

// Output-sparse product: for every token t and i in [0, n_rows):
//   y[t * n_rows + i] = dot(W[rows[i], :], x[t * w.cols .. + w.cols])
// W is row-major [n_out, n_in] in F32, F16, BF16, Q8_0 or Q4_0. rows[] are
// distinct, ascending, within [0, w.rows); only those rows' bytes are read.
// Threads split the row list (not the index range): for_each_list_piece.
// Q8_0/Q4_0 run QuantPath::Auto of matmul_quant (int8 activations on VNNI).
void matmul_gather_rows(const WeightMatrix& w, const float* x, int64_t n_tok, const int32_t* rows,
                        int64_t n_rows, float* y, ThreadPool& pool);

// Input-sparse product against a transposed weight wt [n_in, n_out] (row j
// holds every weight that input j feeds; Q8_0/Q4_0 blocks run along n_out).
// x is compact: x[t * n_active + k] is token t's value of input active[k]
// (it may be 0). active[] is distinct, ascending, within [0, wt.rows).
//   y[t * wt.cols + o] = sum_k x[t * n_active + k] * wt[active[k], o]
// y is fully overwritten (zeros when n_active = 0). Only the active rows of wt
// are read. Threads: with one token each takes an equal share of the active
// list, streams those whole rows into its own partial sum, and the partial
// sums are added (n_out floats per thread); with several tokens they split
// the output columns, so each decoded weight vector serves every token.
// A Q8_0/Q4_0 wt re-laid by packed_for_sparse_input runs the VNNI kernel of
// kernels/sparse_input_q8.h (int8 activations per group of 8 active rows).
void matmul_sparse_input(const WeightMatrix& wt, const float* x, int64_t n_tok, const int32_t* active,
                         int64_t n_active, float* y, ThreadPool& pool);

// Scalar references (rows decoded with dequantize_row, double accumulation):
// the ground truth for tests.
void matmul_gather_rows_reference(const WeightMatrix& w, const float* x, int64_t n_tok,
                                  const int32_t* rows, int64_t n_rows, float* y);
void matmul_sparse_input_reference(const WeightMatrix& wt, const float* x, int64_t n_tok,
                                   const int32_t* active, int64_t n_active, float* y);

// Plumbing shared by the gather kernels (here and matmul_quant_gather_rows).
//
// for_each_list_piece splits a row list [0, n_rows) into pieces of 64
// entries that the threads of pool claim (core/stream_split.h: each streams
// its own share, then helps the other), or keeps it whole on the calling
// thread when n_rows * macs_per_row multiply-adds are too few to be worth
// waking the workers, and calls piece(b, e) for each. For outputs that are
// one per list entry (the gathers), so the split never changes a result.
void for_each_list_piece(int64_t n_rows, int64_t macs_per_row, ThreadPool& pool,
                         const std::function<void(int64_t b, int64_t e)>& piece);

// for_each_row_run calls run(i, r, len) for runs of consecutive rows in each
// piece: rows[i + j] = r + j for j in [0, len). The rows of w (row_bytes
// apart) ~8 KiB ahead in the list are prefetched before each run: the
// hardware prefetchers lose the stream at every gap between runs. With one
// token, runs are cut to ~8 KiB so that the prefetches keep pace.
void for_each_row_run(const uint8_t* w, uint64_t row_bytes, int64_t n_tok, int64_t n_in, const int32_t* rows,
                      int64_t n_rows, ThreadPool& pool,
                      const std::function<void(int64_t i, int64_t r, int64_t len)>& run);

// One token's sum over a list of rows [0, n_rows), each adding into all
// n_out outputs (input-sparse rows): share(k0, k1, out) adds the rows
// k0..k1 into out (n_out floats, zeroed by share itself). With fewer than
// kMinParallelMacs multiply-adds or one thread, one share writes y.
// Otherwise each thread streams an equal share of the list into a partial
// sum of its own (contiguous rows keep the hardware prefetcher running;
// splitting columns makes every thread jump between rows; thread 0's
// partial sum is y itself), then the others are added into y in thread
// order: the result depends on the pool's size, never on timing.
void sum_list_shares(int64_t n_rows, int64_t n_out, float* y, ThreadPool& pool,
                     const std::function<void(int64_t k0, int64_t k1, float* out)>& share);

}  // namespace ffn
