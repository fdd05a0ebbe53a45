#include "transform/activation_stats_gguf.h"

#include <fmt/format.h>

#include <cstring>
#include <memory>

#include "core/error.h"
#include "io/gguf_writer.h"

namespace ffn {

namespace {

const char* const kPrefix = "ffn.activation_stats.";

// The vectors of one layer, in file order, with their expected lengths.
struct Field {
  const char* name;
  std::vector<float>* values;
  size_t count;
};
std::vector<Field> fields(LayerActivationStats& L, size_t hidden) {
  return {{"attn_in.quantiles", &L.attn_in.quantiles, kQuantiles},
          {"attn_in.error", &L.attn_in.error, kErrorPoints},
          {"attn_out.quantiles", &L.attn_out.quantiles, kQuantiles},
          {"attn_out.error", &L.attn_out.error, kErrorPoints},
          {"ffn_in.quantiles", &L.ffn_in.quantiles, kQuantiles},
          {"ffn_in.error", &L.ffn_in.error, kErrorPoints},
          {"ffn_mid.quantiles", &L.ffn_mid.quantiles, kQuantiles},
          {"ffn_mid.error", &L.ffn_mid.error, kErrorPoints},
          {"gate_act.quantiles", &L.gate_act.quantiles, kQuantiles},
          {"chess_importance.quantiles", &L.chess_importance.quantiles, kQuantiles},
          {"up_abs_mean", &L.up_abs_mean, hidden},
          {"firing_rate", &L.firing_rate, hidden}};
}

std::string tensor_name(size_t layer, const char* field) { return fmt::format("stats.{}.{}", layer, field); }

}  // namespace

void save_activation_stats_gguf(const ActivationStats& st, const std::string& path) {
  GgufWriter w;
  auto key = [](const char* k) { return std::string(kPrefix) + k; };
  w.set(key("version"), GgufValue::of_u32(1));
  w.set(key("model"), GgufValue::of_string(st.model));
  w.set(key("text"), GgufValue::of_string(st.text));
  w.set(key("tokens"), GgufValue::of_u64(uint64_t(st.tokens)));
  w.set(key("sampled_tokens"), GgufValue::of_u64(uint64_t(st.sampled_tokens)));
  w.set(key("d_model"), GgufValue::of_u64(uint64_t(st.d_model)));
  w.set(key("hidden"), GgufValue::of_u64(uint64_t(st.hidden)));
  w.set(key("layers"), GgufValue::of_u64(st.layers.size()));
  // The writer reads tensor data at write(): the layers are copied so that
  // fields() can hand out pointers (it takes non-const layers).
  std::vector<LayerActivationStats> layers = st.layers;
  for (size_t l = 0; l < layers.size(); ++l)
    for (const Field& f : fields(layers[l], size_t(st.hidden))) {
      if (f.values->size() != f.count)
        fail(path, tensor_name(l, f.name), fmt::format("{} values", f.count), std::to_string(f.values->size()));
      w.add_tensor(WeightTensor{tensor_name(l, f.name), DType::F32, {f.count},
                                reinterpret_cast<const uint8_t*>(f.values->data()), f.count * sizeof(float)});
    }
  w.write(path);
}

ActivationStats activation_stats_from_gguf(const GgufFile& g) {
  const std::string& path = g.path();
  auto key = [](const char* k) { return std::string(kPrefix) + k; };
  const uint64_t version = g.get_uint(key("version"));
  if (version != 1) fail(path, key("version"), "1", std::to_string(version));
  ActivationStats st;
  st.model = g.get_string(key("model"));
  st.text = g.get_string(key("text"));
  auto count = [&](const char* k, uint64_t hi) {
    const uint64_t v = g.get_uint(key(k));
    if (v > hi) fail(path, key(k), fmt::format("at most {}", hi), std::to_string(v));
    return int64_t(v);
  };
  st.tokens = count("tokens", uint64_t(1) << 48);
  st.sampled_tokens = count("sampled_tokens", uint64_t(1) << 48);
  st.d_model = count("d_model", 1 << 20);
  st.hidden = count("hidden", 1 << 22);
  if (st.d_model < 1) fail(path, key("d_model"), "1..2^20", "0");
  if (st.hidden < 1) fail(path, key("hidden"), "1..2^22", "0");
  const int64_t n_layers = count("layers", 1024);
  st.layers.resize(size_t(n_layers));
  for (size_t l = 0; l < st.layers.size(); ++l)
    for (const Field& f : fields(st.layers[l], size_t(st.hidden))) {
      const std::string name = tensor_name(l, f.name);
      const WeightTensor* t = g.find_tensor(name);
      if (!t) fail(path, "tensor '" + name + "'", "present", "none");
      if (t->type != DType::F32 || t->shape.size() != 1 || t->shape[0] != f.count)
        fail(path, "tensor '" + name + "'", fmt::format("F32 [{}]", f.count),
             fmt::format("{} {}", dtype_name(t->type), t->shape_string()));
      f.values->resize(f.count);
      std::memcpy(f.values->data(), t->data, f.count * sizeof(float));
    }
  validate_activation_stats(st, path);
  return st;
}

}  // namespace ffn
