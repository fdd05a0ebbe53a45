#include "io/model_source.h"

#include "core/error.h"

namespace ffn {

ModelSource ModelSource::without_tensors() const {
  ModelSource out = *this;
  out.tensors.clear();
  out.index_.clear();
  return out;
}

const WeightTensor* ModelSource::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors[it->second];
}

const WeightTensor& ModelSource::get(const std::string& name) const {
  const WeightTensor* t = find(name);
  if (!t) fail(path, "tensor '" + name + "'", "present", "missing");
  return *t;
}

void ModelSource::add(WeightTensor t) {
  if (index_.count(t.name)) fail(path, "tensor '" + t.name + "'", "unique name", "a duplicate");
  index_[t.name] = tensors.size();
  tensors.push_back(std::move(t));
}

}  // namespace ffn
