// Packed Q8_0 / Q4_0 / BF16 products of several tokens on this CPU's AMX
// tiles (the kernels: kernels/amx_packed-inl.h), and whether this process
// uses them.
//
// The kernels are tested through the scalar tile emulator
// (tests/emulated_tiles.h) on every CPU with AVX-512, and against it on
// the hardware tiles where a CPU has them. On first use the process runs
// them once against the AVX-512 tiles on random data: if they disagree,
// AMX stays off and `ffn bench` says so, rather than a product being wrong.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "kernels/matmul_quant.h"
#include "kernels/weight_matrix.h"

namespace ffn {

// From this many tokens on, matmul_packed_rows (QuantPath::Auto) takes the
// AMX tiles where amx_in_use(). One A tile holds 16 tokens; Q8_0/Q4_0
// also re-lay each row tile's weights as signed bytes once per call, which
// a single token group does not repay (BM_PackedAmx, 5632 x 2048, one
// thread: at 16 tokens Q8_0 ran at 0.94-0.99x of the AVX-512 tiles, at 32
// tokens 1.28x; BF16 at 16 tokens 4.0x).
constexpr int64_t kAmxMinTokensBf16 = 16;
constexpr int64_t kAmxMinTokensInt8 = 32;
inline int64_t amx_min_tokens(DType type) { return type == DType::BF16 ? kAmxMinTokensBf16 : kAmxMinTokensInt8; }

// Output rows [r0, r1) (r0 a multiple of kPackRows) of packed w (Q8_0 or
// Q4_0: xa's int8 blocks; BF16: xa.bf16) for n_tok tokens, on the tiles:
// y[t * y_stride + r]. Requires amx_in_use(). Q8_0/Q4_0 give the AVX-512
// tiles' bits; BF16 differs from them by the tile unit's rounding.
void matmul_packed_rows_amx(const WeightMatrix& w, const QuantizedActivations& xa, int64_t n_tok, float* y,
                            int64_t y_stride, int64_t r0, int64_t r1);

// For tests on CPUs without AMX: from now on the products that would take
// the tiles (QuantPath::Amx, or Auto from amx_min_tokens on) call
// `rows` in place of the hardware kernels, whether or not amx_in_use()
// (null: back to normal). Not for use while products run.
using AmxRowsFn = void (*)(const WeightMatrix& w, const QuantizedActivations& xa, int64_t n_tok, float* y,
                           int64_t y_stride, int64_t r0, int64_t r1);
void override_amx_rows(AmxRowsFn rows);

// amx_in_use(), or a test's override_amx_rows in effect.
bool amx_rows_active();

// True when CPUID reports the AMX tile, int8 and bf16 instructions, with
// the AVX-512 F/BW/VL/BF16 and VNNI the kernels and the self-check use.
bool cpu_has_amx();

// Whether the packed products of several tokens run on AMX tiles here, and
// why (printed by `ffn bench`).
struct AmxSupport {
  bool in_use = false;
  std::string reason;
  // Set when an AMX CPU cannot use its tiles (the kernel refused them, or
  // the self-check failed): amx_support() prints it once on stderr.
  bool surprising = false;
};

// The decision, from its inputs (tests give their own):
//  - cpu_has_amx: cpu_has_amx();
//  - env: the value of FFN_AMX, or null when unset: "0" turns AMX off, "1"
//    or unset leaves it to the CPU, anything else is reported and ignored;
//  - request_permission: asks the kernel for the tile state (Linux enables
//    it per process on request); returns 0 or an errno value;
//  - self_check: runs the AMX kernels once against the AVX-512 tiles;
//    false turns AMX off.
AmxSupport decide_amx(bool cpu_has_amx, const char* env, const std::function<int()>& request_permission,
                      const std::function<bool()>& self_check);

// This process's decision, made once on first use.
const AmxSupport& amx_support();
inline bool amx_in_use() { return amx_support().in_use; }

}  // namespace ffn
