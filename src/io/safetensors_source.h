// Hugging Face checkpoints: model.safetensors + config.json (+ tokenizer.json)
// for LlamaForCausalLM.
//
// Tensors are renamed to GGUF's names, and q/k projections are permuted from
// Hugging Face's rotate-half RoPE layout to the interleaved layout that GGUF
// "llama" files use, so that one RoPE convention serves every format and a
// converted file runs in llama.cpp unchanged.
#pragma once

#include <string>

#include "io/model_source.h"

namespace ffn {

// `path` is a directory holding model.safetensors and config.json, or the
// .safetensors file itself (config.json then sits beside it).
ModelSource load_safetensors_model(const std::string& path);

// Parses a safetensors image into tensors named as in the file (fuzzing and
// the loader above use it). `owner` keeps `data` alive.
void parse_safetensors(const uint8_t* data, size_t size, const std::string& path,
                       ModelSource& out, std::shared_ptr<const void> owner);

// Hugging Face tokenizer.json (BPE model with SentencePiece-style "▁"
// normalisation and byte fallback).
TokenizerData load_tokenizer_json(const std::string& text, const std::string& path);
TokenizerData load_tokenizer_json(const std::string& path);

// Row permutation from rotate-half to interleaved RoPE for a [n_head*head_dim,
// d] projection: interleaved row h*hd + 2i + j takes rotate-half row
// h*hd + j*hd/2 + i.
uint64_t rope_interleaved_source_row(uint64_t row, uint64_t head_dim);

}  // namespace ffn
