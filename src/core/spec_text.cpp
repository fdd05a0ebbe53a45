#include "core/spec_text.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <cstdlib>

#include "core/error.h"

namespace ffn {

std::vector<std::string> split_on(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t b = 0;
  for (size_t e; (e = s.find(sep, b)) != std::string::npos; b = e + 1) out.push_back(s.substr(b, e - b));
  out.push_back(s.substr(b));
  return out;
}

int64_t parse_int_field(const std::string& v, const std::string& what, const std::string& field, int64_t lo,
                        int64_t hi) {
  int64_t out = 0;
  const auto r = std::from_chars(v.data(), v.data() + v.size(), out);
  if (r.ec != std::errc() || r.ptr != v.data() + v.size() || out < lo || out > hi)
    fail(what, field, fmt::format("an integer in {}..{}", lo, hi), "\"" + v + "\"");
  return out;
}

double parse_number_field(const std::string& v, const std::string& what, const std::string& field, double lo,
                          double hi) {
  char* end = nullptr;
  const double out = v.empty() ? NAN : std::strtod(v.c_str(), &end);
  if (v.empty() || end != v.c_str() + v.size() || !std::isfinite(out) || out < lo || out > hi)
    fail(what, field, fmt::format("a number in [{}, {}]", lo, hi), "\"" + v + "\"");
  return out;
}

}  // namespace ffn
