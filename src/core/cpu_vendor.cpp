#include "core/cpu_vendor.h"

#include <cpuid.h>

#include <cstring>

namespace ffn {

bool cpu_is_intel() {
  static const bool intel = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return false;
    char vendor[13] = {};
    std::memcpy(vendor, &b, 4);
    std::memcpy(vendor + 4, &d, 4);
    std::memcpy(vendor + 8, &c, 4);
    return std::strcmp(vendor, "GenuineIntel") == 0;
  }();
  return intel;
}

}  // namespace ffn
