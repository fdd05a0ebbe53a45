// Matrix products against Q8_0 / Q4_0 weights (GGUF block layout, read in
// place from the file).
//
// Two paths behind one entry point:
//  - Vnni: activations are quantized per 32-block to int8 with an fp32 scale
//    (as llama.cpp does for these types), and each block's dot product is an
//    integer dot (AVX-512 VNNI vpdpbusd) scaled by d_w * d_x. Chosen at run
//    time when the CPU has AVX-512 VNNI (+BW, VL).
//  - Portable: each weight vector is widened to fp32 in registers and
//    multiplied with fp32 activations (Highway, matmul_quant_portable.cpp).
//    Every other CPU.
#pragma once

#include <cstdint>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/dtype.h"

namespace ffn {

class ThreadPool;

// Amx: the AMX tiles of kernels/amx_packed.h (packed weights only).
enum class QuantPath { Auto, Portable, Vnni, Amx };

// Activations of n_tok tokens quantized per 32-block for the VNNI kernels:
// q[t][i] int8 and d[t][b] with x ~= d * q (d = max|x| / 127). offset8[t][b]
// holds, for each group of 4 bytes k of the block, -8 * (q[4k] + ... +
// q[4k+3]): the Q4_0 kernel's "- 8" term, laid out as vpdpbusd's 8 int32
// lanes. sum[t][b] is q[t][32b] + ... + q[t][32b+31] (the packed kernels'
// zero-point term, kernels/packed_quant.h). d_groups holds d again for the
// AMX tiles (kernels/amx_packed.h), per group of kAmxGroupTokens tokens
// and block the group's scales side by side: d_groups[(g * nb + b) * 16 +
// i] = d[16g + i][b], 0 past the last token.
struct QuantizedActivations {
  static constexpr int64_t kAmxGroupTokens = 16;
  AlignedVector<int8_t> q;
  std::vector<float> d;
  AlignedVector<int32_t> offset8;
  std::vector<int32_t> sum;
  AlignedVector<float> d_groups;
  // For packed BF16 weights instead: x rounded to bf16 (kernels/packed_bf16.h).
  AlignedVector<uint16_t> bf16;

  // Auto: AVX-512 when cpu_has_avx512bw() (Vnni names that path here, it
  // needs no VNNI); Portable: the scalar definition.
  // Both give identical bytes (the same fp32 operations, round to nearest
  // even).
  void quantize(const float* x, int64_t n_tok, int64_t n_in, QuantPath path = QuantPath::Auto);
};

// True when this CPU can run QuantPath::Vnni.
bool cpu_has_vnni();

// True when this CPU can run the packed int8 tiles (kernels/packed_quant.h):
// AVX-512 F/BW/VL, with or without VNNI.
bool cpu_has_avx512bw();

// The instruction sets of the VNNI kernels (functions compiled with it run
// only after cpu_has_vnni()).
#define FFN_VNNI_TARGET __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))

// type: Q8_0 or Q4_0; n_in a multiple of 32; w: n_out rows of n_in/32 blocks.
void matmul_quant(DType type, const float* x, int64_t n_tok, int64_t n_in, const uint8_t* w,
                  int64_t n_out, float* y, ThreadPool& pool, QuantPath path = QuantPath::Auto);

// The single-threaded body of matmul_quant: output rows [r0, r1) of w for
// all tokens, into y[t * y_stride + r]. xa: x quantized (the VNNI path;
// requires cpu_has_vnni()), or null for the portable path, which reads x.
void matmul_quant_rows(DType type, const QuantizedActivations* xa, const float* x, int64_t n_tok, int64_t n_in,
                       const uint8_t* w, float* y, int64_t y_stride, int64_t r0, int64_t r1);

// The portable body alone (any CPU): rows [r0, r1) of w times fp32 x, into
// y[t * y_stride + r].
void matmul_quant_rows_portable(DType type, const float* x, int64_t n_tok, int64_t n_in, const uint8_t* w, float* y,
                                int64_t y_stride, int64_t r0, int64_t r1);

// matmul_quant restricted to a list of weight rows (distinct, ascending, in
// [0, n_out)): y[t * n_rows + i] = dot(row rows[i] of w, x[t]). Activations
// are quantized once; each run of consecutive listed rows goes through the
// same row kernels as matmul_quant. Threads split the list
// (for_each_row_run, sparse_matmul.h).
void matmul_quant_gather_rows(DType type, const float* x, int64_t n_tok, int64_t n_in, const uint8_t* w,
                              const int32_t* rows, int64_t n_rows, float* y, ThreadPool& pool,
                              QuantPath path = QuantPath::Auto);

}  // namespace ffn
