#include "io/json_util.h"

#include <set>

namespace ffn {

constexpr int kMaxJsonDepth = 64;  // our files nest < 10 deep

json parse_json(const std::string& text, const std::string& path) {
  // nlohmann keeps the last of duplicate keys silently; a file with two
  // entries for one tensor name (or token, or setting) is malformed.
  // Nesting is bounded because dump() (used in messages) recurses: "[[[[..."
  // 100k deep would overflow the stack.
  std::vector<std::set<std::string>> keys;  // one set per open object
  int depth = 0;
  auto check = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) {
      if (++depth > kMaxJsonDepth)
        fail(path, "JSON nesting", fmt::format("at most {} levels", kMaxJsonDepth), "deeper");
    }
    if (event == json::parse_event_t::object_end || event == json::parse_event_t::array_end) --depth;
    if (event == json::parse_event_t::object_start) keys.emplace_back();
    if (event == json::parse_event_t::object_end && !keys.empty()) keys.pop_back();
    if (event == json::parse_event_t::key && !keys.empty() && !keys.back().insert(parsed.get<std::string>()).second)
      fail(path, "key \"" + parsed.get<std::string>() + "\"", "unique keys in each JSON object", "a duplicate");
    return true;
  };
  try {
    return json::parse(text, check);
  } catch (const json::exception& e) {
    fail(path, std::string("invalid JSON: ") + e.what());
  }
}

}  // namespace ffn
