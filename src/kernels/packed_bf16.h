// BF16 and F16 weights in row tiles for AVX-512 (vdpbf16ps; vcvtph2ps and
// FMA), the 16-bit float members of the packed layouts
// (kernels/packed_quant.h holds the shared entry points and the Q8_0/Q4_0
// members).
//
// The file layout widens each bf16 weight to fp32 and multiplies it with an
// fp32 activation: 16 multiply-adds per instruction plus a conversion.
// vdpbf16ps multiplies 32 bf16 pairs and adds each pair's two products into
// 16 fp32 lanes: with 16 rows interleaved by pairs, lane r accumulates row r,
// and one broadcast pair of activations serves all 16 rows. The activations
// are rounded to bf16 first (round to nearest even), as llama.cpp does for
// BF16 weights; products and sums stay fp32.
//
// F16 weights take the same layout (a pair is 4 bytes either way); the
// kernel widens each vector's halves to two fp32 vectors (exactly) and
// multiplies them with the fp32 activations: F16 products are not rounded
// to bf16.
//
// Layout: row tiles of kPackRows rows (the last zero-padded), each tile all
// of its 32-column blocks in order; block b is 16 vectors of 64 bytes,
// vector k holding weights 32b+2k and 32b+2k+1 of the 16 rows (row r at bytes
// 4r..4r+3). A tile-block is 16 rows x 32 columns x 2 bytes.
#pragma once

#include <cstdint>

#include "kernels/weight_matrix.h"

namespace ffn {

// True when this CPU can run the BF16 tile kernel (AVX-512 F + BF16).
bool cpu_has_avx512_bf16();

// Bytes of one packed BF16 or F16 row tile of a [*, cols] matrix (cols % 32 == 0).
uint64_t packed_bf16_tile_bytes(int64_t cols);

// Tiles [i0, i1) of BF16 or F16 w into out (the packed buffer's start).
void pack_bf16_tiles(const WeightMatrix& w, uint8_t* out, int64_t i0, int64_t i1);

// x (n values) rounded to bf16, round to nearest even: the activations the
// kernel reads. Uses AVX-512 BF16 when present; same bits either way.
void round_to_bf16(const float* x, int64_t n, uint16_t* out);

// Output rows [r0, r1) (r0 a multiple of kPackRows) of packed BF16 w for
// n_tok tokens of bf16 activations x (n_tok x w.cols): y[t * y_stride + r].
void matmul_packed_bf16_rows(const WeightMatrix& w, const uint16_t* x, int64_t n_tok, float* y, int64_t y_stride,
                             int64_t r0, int64_t r1);

// The same for packed F16 w and fp32 activations x (n_tok x w.cols).
void matmul_packed_f16_rows(const WeightMatrix& w, const float* x, int64_t n_tok, float* y, int64_t y_stride,
                            int64_t r0, int64_t r1);

}  // namespace ffn
