// Q8_0 / Q4_0 weights re-laid in row tiles for the VNNI kernels, and the
// entry points shared with the BF16 and F16 tiles (kernels/packed_bf16.h).
//
// In the file layout (one row after another) a 512-bit integer dot product
// covers one or two blocks of ONE row, so every block of every row pays a
// horizontal sum or a scale broadcast. Interleaving 16 rows per block turns
// that around: one vpdpbusd multiplies 4 bytes of each of 16 rows with the
// same 4 activation bytes (broadcast), and 8 of them leave each row's whole
// block sum in its own lane; one conversion and one FMA then scale 16 rows
// at once, and a tile's 16 outputs are one vector store. This is the kind of
// load-time "repacking" llama.cpp does for Q4_0 (its Q4_0x8 buffers); the
// layout and arithmetic below are our own.
//
// Layout of a packed matrix: row tiles of kPackRows rows (the last one
// zero-padded), each tile all of its blocks in order. One tile-block:
//   32 bytes   the 16 rows' fp16 scales d, row order
//   then 64-byte vectors, vector k holding bytes 4k..4k+3 of the 16 rows'
//   quant bytes (row r at bytes 4r..4r+3):
//     Q8_0: 8 vectors, each byte w XOR 0x80 (w + 128, as unsigned);
//     Q4_0: 4 vectors of the nibble bytes; low nibbles are weights
//           4k..4k+3, high nibbles weights 16+4k..16+4k+3.
// So a tile-block is exactly 16 file blocks (544 / 288 bytes).
//
// Arithmetic: vpdpbusd multiplies unsigned by signed bytes. The weights are
// stored unsigned, u = w + z (z = 128 for Q8_0, z = 8 for Q4_0's nibbles),
// and sum_j w_j x_j = sum_j u_j x_j - z * sum_j x_j: the second term is one
// integer per activation block (QuantizedActivations::sum), the start value
// of the accumulator. The integer block sums are exact, so the result equals
// the row-major VNNI kernel's up to fp32 summation order. CPUs with
// AVX-512 BW but no VNNI (Skylake-X) get the same sums from vpmaddubsw +
// vpmaddwd (packed_quant.cpp).
#pragma once

#include <cstdint>
#include <memory>

#include "core/dtype.h"
#include "kernels/matmul_quant.h"
#include "kernels/weight_matrix.h"

namespace ffn {

class ThreadPool;

constexpr int64_t kPackRows = 16;

// The fp16 scales at the start of a Q8_0/Q4_0 tile-block.
constexpr int64_t kPackedScaleBytes = 2 * kPackRows;

// Bytes of one tile-block (16 rows x 32 columns) of the packed layout of
// `type`: scales and quant bytes (Q8_0 544, Q4_0 288), or bf16 pairs (BF16
// 1024, kernels/packed_bf16.h).
constexpr int64_t packed_block_bytes(DType type) {
  if (type == DType::BF16) return kPackRows * 32 * 2;
  return kPackedScaleBytes + kPackRows * (type == DType::Q8_0 ? 32 : 16);
}

// One token reads a packed matrix as one stream, tile after tile, and on
// Intel CPUs the one-token tile kernels prefetch this many bytes ahead of
// the block they compute (0: none, the hardware prefetchers alone).
// DRAM-resident matrices, 2 threads:
//  - Intel Xeon (family 6 model 207), BM_Matmul/{8,2,30}/1/2/1 against a
//    read probe of ~28-31 GB/s: Q8_0 27.3 -> 29.5, Q4_0 19.7 -> 26.0, BF16
//    23.3 -> 25.2-26.1 GB/s with 2 KiB; 1 KiB gained half as much, 4 KiB
//    the same.
//  - AMD Zen 5 (family 26), BM_PackedPrefetch (none and 2 KiB alternating
//    call by call in one process): 2 KiB ran at 0.85-1.00x of none for
//    Q8_0, Q4_0 and BF16 at 1 and 2 threads, 1 KiB at 0.85-1.01x (none
//    against none: 0.98-1.02x). So AMD CPUs do not prefetch.
int64_t packed_prefetch_bytes();

// Makes packed_prefetch_bytes return `bytes` from now on
// (-1: back to the per-CPU choice above). For benchmarks that compare
// distances in one process (BM_PackedPrefetch); not for use while products
// run on other threads.
void override_packed_prefetch_bytes(int64_t bytes);

// Bytes of one packed row tile (all its blocks) of a [*, cols] matrix.
uint64_t packed_tile_bytes(DType type, int64_t cols);

// True when w can be packed and the packed kernel can run here: Q8_0 or
// Q4_0 weights on a CPU with AVX-512 BW (VNNI where it has it), or BF16 or
// F16 weights with cols a multiple of 32 on a CPU with AVX-512 BF16
// (kernels/packed_bf16.h).
bool can_pack(const WeightMatrix& w);

// Sets w.packed (a new buffer, shared by copies of w) when can_pack(w), and
// then releases w.data's pages from the resident set if they are a file
// mapping (core/mapped_file.h): matmul reads only the packed copy, and
// readers of w.data (gathers, embedding rows, conversion) fault the pages
// back in. Otherwise leaves w unchanged. Tiles are split over `pool`.
void pack_row_tiles(WeightMatrix& w, ThreadPool* pool);

// w without its packed copy (for layers that read rows of w.data, so the
// copy would only cost memory).
WeightMatrix without_packed(WeightMatrix w);

// Memory for re-laid weights (here and kernels/sparse_input_q8.h): size
// bytes, 64-byte aligned, in transparent huge pages where the kernel allows.
// Small matrices share 64 MiB chunks (freed with the last matrix in them).
std::shared_ptr<uint8_t> packed_weight_buffer(uint64_t size);

// One allocation of its own (not zeroed, 64-byte aligned), in transparent
// huge pages from 4 MiB up: for weights built at load that may be dropped
// again (transposed copies), which must not pin a shared chunk.
std::shared_ptr<uint8_t> weight_allocation(uint64_t size);

// Output rows [r0, r1) of packed w for n_tok tokens of prepared
// activations (int8 blocks for Q8_0/Q4_0, xa.bf16 for BF16):
// y[t * y_stride + r]. r0 must be a multiple of kPackRows. `path` Amx
// takes the AMX tiles (kernels/amx_packed.h; without them, a logic_error). For
// Q8_0/Q4_0, Vnni takes vpdpbusd and Portable the AVX-512BW sums (the same
// integers; tests run both where the CPU has VNNI); BF16 takes vdpbf16ps
// for both. Auto: the tiles from amx_min_tokens(w.type) tokens on where
// amx_in_use(), else the first of Vnni and Portable this CPU has.
void matmul_packed_rows(const WeightMatrix& w, const QuantizedActivations& xa, int64_t n_tok, float* y,
                        int64_t y_stride, int64_t r0, int64_t r1, QuantPath path = QuantPath::Auto);

}  // namespace ffn
