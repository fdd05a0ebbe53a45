// Shared helpers for the test suite: data paths and small utilities.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kernels/weight_matrix.h"

namespace ffn::test {

inline std::string data_path(const std::string& rel) { return std::string(FFN_DATA_DIR) + "/" + rel; }
inline std::string model_path(const std::string& rel) { return std::string(FFN_MODELS_DIR) + "/" + rel; }
inline std::string ref_path(const std::string& rel) { return std::string(FFN_REF_DIR) + "/" + rel; }
inline std::string ffn_binary() { return FFN_BINARY; }

// Built with AddressSanitizer + UBSan, where a forward pass runs ~5-10x
// slower: the end-to-end tests then score fewer tokens. What they check
// (every code path, every assertion) stays the same; the Release build
// checks the numbers on the full texts.
#ifdef FFN_SANITIZED
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif

// A fresh, empty scratch directory under the system temp directory, unique
// per test and call.
std::string temp_dir();

// Uniform random floats in [-1, 1) (never all zero).
std::vector<float> random_floats(size_t n, uint64_t seed);

// `count` distinct indices of [0, n), ascending (an active set).
std::vector<int32_t> random_subset(int64_t n, int64_t count, uint64_t seed);

// x as the VNNI kernels round activations, written from the definition:
// per 32-block (x.size() a multiple of 32), d = max|x| / 127, q = x / d
// rounded to nearest even, x ~= d * q.
std::vector<float> int8_roundtrip(const std::vector<float>& x);

// A rows x cols matrix of `type` (owned) from random_floats, row r scaled
// by 0.1 + r % 7 so that the rows' quantization scales differ.
WeightMatrix random_weight(DType type, int64_t rows, int64_t cols, uint64_t seed);

// x rounded to bf16 (nearest even), from the format's definition.
std::vector<float> bf16_roundtrip(const std::vector<float>& x);

struct CommandResult {
  int status = -1;
  std::string out;
  std::string err;
};
// Runs a shell command, capturing stdout and stderr.
CommandResult run_command(const std::string& command);

}  // namespace ffn::test
