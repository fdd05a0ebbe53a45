#include "kernels/amx_packed.h"

#include <cpuid.h>
#include <fmt/format.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "kernels/amx_packed-inl.h"
#include "kernels/packed_bf16.h"

namespace ffn {

namespace {

// arch_prctl requests for the dynamically enabled tile state
// (<asm/prctl.h>; Linux 5.16+) and its feature number (XTILEDATA).
constexpr int kArchGetXcompPerm = 0x1022;
constexpr int kArchReqXcompPerm = 0x1023;
constexpr int kXfeatureXtiledata = 18;

int request_tile_permission() {
  if (::syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) != 0) return errno;
  unsigned long granted = 0;
  if (::syscall(SYS_arch_prctl, kArchGetXcompPerm, &granted) != 0) return errno;
  return granted & (1ul << kXfeatureXtiledata) ? 0 : EPERM;
}

// CPUID leaf 7, EDX: AMX-BF16 (bit 22), AMX-TILE (24), AMX-INT8 (25). Read
// directly: clang 14's __builtin_cpu_supports does not know these names.
bool cpuid_reports_amx() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  constexpr unsigned kAmx = (1u << 22) | (1u << 24) | (1u << 25);
  return (d & kAmx) == kAmx;
}

std::atomic<AmxRowsFn> rows_override{nullptr};  // override_amx_rows

}  // namespace

bool cpu_has_amx() {
  static const bool has = cpuid_reports_amx() && cpu_has_avx512bw() && cpu_has_vnni() && cpu_has_avx512_bf16();
  return has;
}

void override_amx_rows(AmxRowsFn rows) { rows_override.store(rows, std::memory_order_relaxed); }

bool amx_rows_active() { return rows_override.load(std::memory_order_relaxed) != nullptr || amx_in_use(); }

void matmul_packed_rows_amx(const WeightMatrix& w, const QuantizedActivations& xa, int64_t n_tok, float* y,
                            int64_t y_stride, int64_t r0, int64_t r1) {
  if (const AmxRowsFn rows = rows_override.load(std::memory_order_relaxed)) {
    rows(w, xa, n_tok, y, y_stride, r0, r1);
    return;
  }
  if (w.type == DType::BF16) AmxPacked<HardwareTiles>::bf16_rows(w, xa.bf16.data(), n_tok, y, y_stride, r0, r1);
  else AmxPacked<HardwareTiles>::quant_rows(w, xa, n_tok, y, y_stride, r0, r1);
}

AmxSupport decide_amx(bool cpu_has_amx, const char* env, const std::function<int()>& request_permission,
                      const std::function<bool()>& self_check) {
  std::string note;
  if (env != nullptr && std::strcmp(env, "0") == 0) return {false, "off (FFN_AMX=0)"};
  if (env != nullptr && std::strcmp(env, "1") != 0) note = fmt::format(" (FFN_AMX='{}' ignored: 0 or 1)", env);
  if (!cpu_has_amx) return {false, "no AMX tiles on this CPU" + note};
  if (const int err = request_permission(); err != 0) {
    // EINVAL: a kernel without dynamic tile state (Linux before 5.16) does
    // not know the request.
    const char* hint = err == EINVAL ? "; Linux 5.16 or later grants it" : "";
    return {false, fmt::format("the kernel refused the tile state ({}{}){}", std::strerror(err), hint, note), true};
  }
  if (!self_check())
    return {false, "off: the tiles disagreed with the AVX-512 kernels on the self-check" + note, true};
  return {true,
          fmt::format("bf16 tiles from {} tokens on, int8 from {}{}", kAmxMinTokensBf16, kAmxMinTokensInt8, note)};
}

const AmxSupport& amx_support() {
  static const AmxSupport decided = [] {
    AmxSupport s = decide_amx(cpu_has_amx(), std::getenv("FFN_AMX"), request_tile_permission,
                              [] { return amx_agrees_with_avx512<HardwareTiles>(); });
    if (s.surprising)
      fmt::print(stderr, "ffn: warning: this CPU has AMX but products run on AVX-512: {}\n", s.reason);
    return s;
  }();
  return decided;
}

}  // namespace ffn
