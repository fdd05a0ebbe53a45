// The FFN transforms a user applies to a model's layers, by name: the
// `--ffn` flag of `ffn convert` and the steps of `ffn report --variants`.
//   moe:...       dense -> mixture of experts (transform/dense_to_moe.h)
//   upcycle:...   dense -> experts that copy it (transform/upcycle.h)
//   average       mixture of experts -> one dense FFN (transform/upcycle.h)
#pragma once

#include <cstdint>
#include <string>

#include "io/model_source.h"

namespace ffn {

class ThreadPool;
class LlamaModel;
struct FfnActivations;

// True for a step of the forms above (not yet validated).
bool is_ffn_transform(const std::string& step);
// Validates the step (errors name `what`); true when it needs recorded
// activations (moe).
bool ffn_transform_needs_calibration(const std::string& step, const std::string& what = "--ffn");

// src with the transform applied. `model` is loaded from src; acts are its
// activations on calibration text (required when the step needs them).
ModelSource transform_ffn(const ModelSource& src, const LlamaModel& model, const std::string& step,
                          const FfnActivations* acts, ThreadPool& pool);

// How many calibration tokens to record for `model`: `wanted`, capped so
// the recording stays under ~1 GiB.
int64_t ffn_calibration_tokens(const LlamaModel& model, int64_t wanted);

}  // namespace ffn
