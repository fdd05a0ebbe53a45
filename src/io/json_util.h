// Strict JSON reading shared by the loaders (config.json, tokenizer.json,
// safetensors headers, activation statistics): duplicate keys and deep
// nesting are errors, and a value is read only if it holds the requested
// type exactly. Every error names the file and the key.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/error.h"

namespace ffn {

using json = nlohmann::json;

// Parses `text` (from `path`, named in errors).
json parse_json(const std::string& text, const std::string& path);

// True if `v` holds a T exactly: nlohmann's get<> would otherwise turn -1
// into 2^64-1, 12.5 into 12, true into 1, and 1e300 into undefined behaviour.
template <typename T>
bool json_holds(const json& v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v.is_boolean();
  } else if constexpr (std::is_integral_v<T>) {
    if (v.is_number_unsigned()) return std::in_range<T>(v.get<uint64_t>());
    return v.is_number_integer() && std::in_range<T>(v.get<int64_t>());
  } else if constexpr (std::is_floating_point_v<T>) {
    return v.is_number();
  } else if constexpr (std::is_same_v<T, std::string>) {
    return v.is_string();
  } else {  // std::vector<E>
    return v.is_array() && std::all_of(v.begin(), v.end(), json_holds<typename T::value_type>);
  }
}

template <typename T>
T json_get(const json& j, const char* key, const std::string& path) {
  if (!j.is_object() || !j.contains(key)) fail(path, key, "a JSON field", "none");
  if (!json_holds<T>(j.at(key))) fail(path, key, "a value of the right type", j.at(key).dump());
  try {
    return j.at(key).get<T>();
  } catch (const json::exception&) {
    fail(path, key, "a value of the right type", j.at(key).dump());
  }
}

template <typename T>
T json_get_or(const json& j, const char* key, T dflt, const std::string& path) {
  if (!j.is_object() || !j.contains(key) || j.at(key).is_null()) return dflt;
  return json_get<T>(j, key, path);
}


}  // namespace ffn
