// Parsing the small "name:key=value,key=value" specs of command-line flags
// (--ffn moe:experts=8,top_k=2, --variants ...), with errors that name the
// flag, the field and what was expected.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ffn {

// "a,b,,c" -> {"a", "b", "", "c"}.
std::vector<std::string> split_on(const std::string& s, char sep);

// Whole-string integer in [lo, hi] / finite number in [lo, hi]; otherwise
// ffn::Error "<what>: <field>: expected ..., found "<v>"".
int64_t parse_int_field(const std::string& v, const std::string& what, const std::string& field, int64_t lo,
                        int64_t hi);
double parse_number_field(const std::string& v, const std::string& what, const std::string& field, double lo,
                          double hi);

}  // namespace ffn
