// The CPU's vendor, for the choices that follow one vendor's hardware
// prefetchers (kernels/group_prefetch.h, kernels/row_placement.h): measured
// on Intel cores, left at the portable choice elsewhere.
#pragma once

namespace ffn {

// CPUID's vendor string is "GenuineIntel" (read once).
bool cpu_is_intel();

}  // namespace ffn
