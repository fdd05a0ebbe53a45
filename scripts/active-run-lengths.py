#!/usr/bin/python3
"""Would reordering channels lengthen the runs of active rows that TEAL reads?

The input-sparse kernels read one weight row per active channel. On the
machines measured (docs/BENCHMARKS.md) scattered rows read at ~70% of the
sequential rate and runs of ~16 adjacent rows at ~90%, so a channel order
in which co-active channels sit side by side would make TEAL decode faster.
This measures, on a real model, the mean length of runs of active channels
in three orders:

  original     the checkpoint's order;
  frequency    sorted by how often each channel fired on the first half of
               the text (the order a converter could derive from
               `ffn calibrate` statistics);
  co-activation  a greedy chain: start at the most frequent channel, then
               always the not yet placed channel whose firing is most
               correlated with the last one's (first half of the text).

Masks are TEAL's: |x| above the per-tensor quantile for the target
sparsity, fitted on the first half. Runs are counted on the second half
(held out), for the FFN input (gate/up rows of W^T, the residual stream's
channels) and the FFN intermediate (rows of down's W^T, the neurons).

Uses the fp64 numpy forward pass of tests/ref/llama_ref.py.

    /usr/bin/python3 scripts/active-run-lengths.py \
        --model ../shared/data/models/tinystories-656k \
        --text ../shared/data/text/tinystories_valid_head.txt
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref"))
import llama_ref as ref  # noqa: E402


def ffn_activations(m, tokens):
    """Per layer: the FFN input (normed) and intermediate, [T, channels]."""
    T = len(tokens)
    nh, nkv = m["n_heads"], m["n_kv"]
    hd = m["dim"] // nh
    x = m["emb"][np.asarray(tokens)].copy()
    future = np.triu(np.ones((T, T), dtype=bool), k=1)
    inputs, mids = [], []
    for L in m["layers"]:
        h = ref.rmsnorm(x, L["attn_norm"], m["eps"])
        q = ref.apply_rope((h @ L["wq"].T).reshape(T, nh, hd), m["rope_style"], m["rope_base"])
        k = ref.apply_rope((h @ L["wk"].T).reshape(T, nkv, hd), m["rope_style"], m["rope_base"])
        v = (h @ L["wv"].T).reshape(T, nkv, hd)
        k, v = np.repeat(k, nh // nkv, axis=1), np.repeat(v, nh // nkv, axis=1)
        s = q.transpose(1, 0, 2) @ k.transpose(1, 2, 0) / np.sqrt(hd)
        s[:, future] = -np.inf
        p = np.exp(s - s.max(axis=-1, keepdims=True))
        p /= p.sum(axis=-1, keepdims=True)
        x = x + (p @ v.transpose(1, 0, 2)).transpose(1, 0, 2).reshape(T, m["dim"]) @ L["wo"].T
        h = ref.rmsnorm(x, L["ffn_norm"], m["eps"])
        g = h @ L["w1"].T
        a = g / (1.0 + np.exp(-g)) * (h @ L["w3"].T)
        inputs.append(h)
        mids.append(a)
        x = x + a @ L["w2"].T
    return inputs, mids


def mean_run(mask):
    """Mean length of the runs of True along each row, over all rows."""
    padded = np.pad(mask.astype(np.int8), ((0, 0), (1, 1)))
    edges = np.diff(padded, axis=1)
    starts = np.count_nonzero(edges == 1)
    return mask.sum() / max(starts, 1)


def coactivation_order(fired):
    corr = np.nan_to_num(np.corrcoef(fired.T.astype(np.float64)))
    n = corr.shape[0]
    placed = np.zeros(n, dtype=bool)
    order = [int(np.argmax(fired.mean(axis=0)))]
    placed[order[0]] = True
    for _ in range(n - 1):
        row = np.where(placed, -np.inf, corr[order[-1]])
        order.append(int(np.argmax(row)))
        placed[order[-1]] = True
    return np.array(order)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="Hugging Face Llama dir (config.json, model.safetensors, tokenizer.json)")
    ap.add_argument("--text", required=True)
    ap.add_argument("--tokens", type=int, default=1024)
    ap.add_argument("--sparsity", type=float, nargs="+", default=[0.5, 0.7])
    args = ap.parse_args()
    m = ref.load_hf_llama(args.model)
    tok = ref.HFBPETokenizer(os.path.join(args.model, "tokenizer.json"))
    with open(args.text, encoding="utf-8") as f:
        ids = tok.encode(f.read())[: min(args.tokens, m["seq_len"])]
    inputs, mids = ffn_activations(m, ids)
    print("| tensor | layer | sparsity | channels | original | frequency | co-activation |")
    print("|---|---|---|---|---|---|---|")
    with np.errstate(invalid="ignore", divide="ignore"):
        for name, acts in (("FFN input", inputs), ("FFN intermediate", mids)):
            for layer, a in enumerate(acts):
                magnitude = np.abs(a)
                half = a.shape[0] // 2
                for sparsity in args.sparsity:
                    fired = magnitude > np.quantile(magnitude[:half], sparsity)
                    calib, held_out = fired[:half], fired[half:]
                    by_frequency = np.argsort(-calib.mean(axis=0), kind="stable")
                    by_coactivation = coactivation_order(calib)
                    print(f"| {name} | {layer} | {sparsity:.0%} | {a.shape[1]} | {mean_run(held_out):.2f} | "
                          f"{mean_run(held_out[:, by_frequency]):.2f} | {mean_run(held_out[:, by_coactivation]):.2f} |")


if __name__ == "__main__":
    main()
