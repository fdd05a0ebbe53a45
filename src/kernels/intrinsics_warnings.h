// GCC 12's AVX-512 headers pass _mm512_undefined_*() as merge sources,
// which -Wmaybe-uninitialized and -Wuninitialized report at every inlined
// use. Kernels written with the intrinsics sit between
// FFN_INTRINSICS_WARNINGS_OFF and FFN_INTRINSICS_WARNINGS_ON. Clang does
// not report them (and has no -Wmaybe-uninitialized to turn off).
#pragma once

#if defined(__clang__)
#define FFN_INTRINSICS_WARNINGS_OFF
#define FFN_INTRINSICS_WARNINGS_ON
#else
#define FFN_INTRINSICS_WARNINGS_OFF                                  \
  _Pragma("GCC diagnostic push")                                     \
      _Pragma("GCC diagnostic ignored \"-Wmaybe-uninitialized\"")    \
          _Pragma("GCC diagnostic ignored \"-Wuninitialized\"")
#define FFN_INTRINSICS_WARNINGS_ON _Pragma("GCC diagnostic pop")
#endif
