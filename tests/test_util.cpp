#include "test_util.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <numeric>
#include <sstream>

#include "core/aligned_buffer.h"
#include "kernels/convert.h"

namespace ffn::test {

std::string temp_dir() {
  static std::atomic<int> counter{0};
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = info ? std::string(info->test_suite_name()) + "." + info->name() : "misc";
  for (char& c : name)
    if (c == '/') c = '_';
  const auto dir = std::filesystem::temp_directory_path() /
                   ("ffn_test_" + std::to_string(::getpid()) + "_" + name + "_" + std::to_string(counter++));
  // Fresh even when a run with the same pid left one behind (pids recycle,
  // and a crashed or killed test never cleans up).
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

std::vector<float> random_floats(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

std::vector<int32_t> random_subset(int64_t n, int64_t count, uint64_t seed) {
  std::vector<int32_t> all(static_cast<size_t>(n));
  std::iota(all.begin(), all.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(all.begin(), all.end(), rng);
  all.resize(static_cast<size_t>(count));
  std::sort(all.begin(), all.end());
  return all;
}

WeightMatrix random_weight(DType type, int64_t rows, int64_t cols, uint64_t seed) {
  WeightMatrix w{.type = type, .rows = rows, .cols = cols};
  auto buf = std::make_shared<AlignedVector<uint8_t>>(w.bytes());
  auto f = random_floats(size_t(rows * cols), seed);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) f[size_t(r * cols + c)] *= 0.1f + float(r % 7);
  for (int64_t r = 0; r < rows; ++r)
    encode_row(type, f.data() + r * cols, buf->data() + r * w.row_bytes(), uint64_t(cols));
  w.data = buf->data();
  w.owned = buf;
  return w;
}

std::vector<float> bf16_roundtrip(const std::vector<float>& x) {
  std::vector<float> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    uint32_t bits;
    std::memcpy(&bits, &x[i], 4);
    bits = (bits + 0x7fff + ((bits >> 16) & 1)) & 0xffff0000u;
    std::memcpy(&out[i], &bits, 4);
  }
  return out;
}

std::vector<float> int8_roundtrip(const std::vector<float>& x) {
  std::vector<float> out(x.size());
  for (size_t b = 0; b < x.size(); b += 32) {
    float amax = 0;
    for (size_t j = 0; j < 32; ++j) amax = std::max(amax, std::abs(x[b + j]));
    const float d = amax / 127.0f, inv = d ? 1.0f / d : 0.0f;
    for (size_t j = 0; j < 32; ++j) out[b + j] = d * std::nearbyint(x[b + j] * inv);
  }
  return out;
}

CommandResult run_command(const std::string& command) {
  const std::string dir = temp_dir();
  const std::string out = dir + "/stdout", err = dir + "/stderr";
  const int raw = std::system((command + " >" + out + " 2>" + err + " </dev/null").c_str());
  CommandResult r;
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  auto slurp = [](const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

}  // namespace ffn::test
