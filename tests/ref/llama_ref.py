#!/usr/bin/python3
"""Independent fp64 numerical reference for the C++ Llama inference engine.

Written from first principles (llama2.c / Hugging Face Llama semantics) with
numpy + stdlib only.  It loads

  * models/stories260K.bin  (llama2.c legacy checkpoint) + models/tok512.bin
  * models/tinystories-656k (HF LlamaForCausalLM safetensors + tokenizer.json)

and writes reference numbers (logits, tokenizer encodings, windowed perplexity,
greedy generations) that the engine's tests compare against.

Run (needs a Python with numpy, e.g. /usr/bin/python3 here):

    /usr/bin/python3 tests/ref/llama_ref.py --data /path/to/shared/data --out OUTDIR

Outputs OUTDIR/reference.json and OUTDIR/valid_slice.txt (the first 200 lines
of text/tinystories_valid_head.txt, byte-exact).  Sanity checks (README greedy
outputs, README's stories260K NLL 1.362 over 3052 tokens, RoPE table layout,
tokenizer round trips) raise on failure.

Notes
  * The 656K model keeps HF's q/k layout; RoPE is applied HF-style with
    rotate_half (pairs (x[j], x[j+hd/2])) -- the weights are NOT permuted, so
    this is an independent check of the engine's permutation.
  * stories260K uses llama2.c's interleaved pairs (x[2j], x[2j+1]).
  * Random-token logits cases use a fresh numpy.random.default_rng(1234) per
    model: rng.integers(3, vocab, size=40).
  * "greedy" holds, per model, the "Once upon a time" prompt case and an
    extra empty-prompt case (BOS alone), which is what the README quotes.
    656K's README sentence only appears from BOS alone: tokenizer.json encodes
    the prompt with a lone leading U+2581 token ([80, 147, ...]) and the
    model continues differently ("Once upon a time, a little girl named Lily
    lived ...").
  * reference.json is written as UTF-8 with ensure_ascii=False (no \\uXXXX
    surrogate pairs for non-BMP characters).
"""

import argparse
import heapq
import json
import math
import os
import struct
import sys
import time

import numpy as np

BOS = 1
SEED = 1234
N_RANDOM = 40
LOGITS_SENTENCE = "Once upon a time, there was a little girl named Lily."
GREEDY_PROMPT = "Once upon a time"
GREEDY_N = 40
VALID_LINES = 200
PPL_CTXS = (128, 512)
ENCODE_TEXTS = [
    "Once upon a time",
    "",
    " ",
    "Hello  world\n\nnew paragraph",
    "  leading and trailing  ",
    "caf\u00e9 na\u00efve \u2014 \u65e5\u672c\u8a9e \U0001F642",
    "Lily's mom said, \"Let's go!\"",
]
EXPECT_260K = ("Once upon a time, there was a little girl named Lily. She loved to "
               "play outside in the park. One day, she saw a big, red ball.")
EXPECT_656K = ("Once upon a time, there was a little girl named Lily. She had a toy "
               "car that she loved very much.")

M260 = "models/stories260K.bin"
T512 = "models/tok512.bin"
M656 = "models/tinystories-656k"
T656 = "models/tinystories-656k/tokenizer.json"


# ----------------------------------------------------------------------------
# Model loading
# ----------------------------------------------------------------------------

def load_llama2c_legacy(path):
    """llama2.c legacy checkpoint: 7 x int32 header, then fp32 arrays."""
    with open(path, "rb") as f:
        raw = f.read()
    dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len = struct.unpack_from("<7i", raw, 0)
    shared = vocab > 0
    vocab = abs(vocab)
    hd = dim // n_heads
    kv_dim = n_kv * hd
    data = np.frombuffer(raw, dtype="<f4", offset=28)
    pos = [0]

    def take(*shape):
        n = int(np.prod(shape))
        a = data[pos[0]:pos[0] + n]
        if a.size != n:
            raise ValueError("checkpoint truncated")
        pos[0] += n
        return a.reshape(shape).astype(np.float64)

    emb = take(vocab, dim)
    rms_att = take(n_layers, dim)
    wq = take(n_layers, dim, dim)
    wk = take(n_layers, kv_dim, dim)
    wv = take(n_layers, kv_dim, dim)
    wo = take(n_layers, dim, dim)
    rms_ffn = take(n_layers, dim)
    w1 = take(n_layers, hidden, dim)
    w2 = take(n_layers, dim, hidden)
    w3 = take(n_layers, hidden, dim)
    rms_final = take(dim)
    fc_real = take(seq_len * hd // 2)
    fc_imag = take(seq_len * hd // 2)
    wcls = emb if shared else take(vocab, dim)
    if pos[0] != data.size:
        raise ValueError("checkpoint has %d trailing floats" % (data.size - pos[0]))

    # Sanity: the stored (unused) freq_cis tables must match our interleaved
    # RoPE angles p * base^(-2j/hd) -- confirms the convention we apply.
    p = np.arange(seq_len, dtype=np.float64)[:, None]
    theta = 10000.0 ** (-np.arange(0, hd, 2, dtype=np.float64) / hd)[None, :]
    ang = (p * theta).reshape(-1)
    err = max(np.abs(np.cos(ang) - fc_real).max(), np.abs(np.sin(ang) - fc_imag).max())
    if err > 1e-3:
        raise AssertionError("freq_cis table does not match RoPE angles (err %g)" % err)

    layers = []
    for l in range(n_layers):
        layers.append(dict(attn_norm=rms_att[l], wq=wq[l], wk=wk[l], wv=wv[l], wo=wo[l],
                           ffn_norm=rms_ffn[l], w1=w1[l], w2=w2[l], w3=w3[l]))
    return dict(dim=dim, hidden=hidden, n_layers=n_layers, n_heads=n_heads, n_kv=n_kv,
                vocab=vocab, seq_len=seq_len, eps=1e-5, rope_base=10000.0,
                rope_style="interleaved", emb=emb, layers=layers, final_norm=rms_final,
                wcls=wcls)


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (hlen,) = struct.unpack_from("<Q", raw, 0)
    header = json.loads(raw[8:8 + hlen].decode("utf-8"))
    base = 8 + hlen
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            raise ValueError("unsupported dtype %s for %s" % (info["dtype"], name))
        a, b = info["data_offsets"]
        arr = np.frombuffer(raw[base + a:base + b], dtype="<f4")
        out[name] = arr.reshape(info["shape"]).astype(np.float64)
    return out, header.get("__metadata__", {})


def load_hf_llama(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    t, _meta = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    dim = cfg["hidden_size"]
    n_heads = cfg["num_attention_heads"]
    n_kv = cfg.get("num_key_value_heads", n_heads)
    if "model.embed_tokens.weight" in t:
        emb = t["model.embed_tokens.weight"]
    else:  # tied: only lm_head.weight stored
        emb = t["lm_head.weight"]
    wcls = t.get("lm_head.weight", emb)
    if cfg.get("rope_scaling"):
        raise ValueError("rope_scaling not supported by this reference")
    layers = []
    for l in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % l
        layers.append(dict(
            attn_norm=t[p + "input_layernorm.weight"],
            wq=t[p + "self_attn.q_proj.weight"], wk=t[p + "self_attn.k_proj.weight"],
            wv=t[p + "self_attn.v_proj.weight"], wo=t[p + "self_attn.o_proj.weight"],
            ffn_norm=t[p + "post_attention_layernorm.weight"],
            w1=t[p + "mlp.gate_proj.weight"], w2=t[p + "mlp.down_proj.weight"],
            w3=t[p + "mlp.up_proj.weight"]))
    return dict(dim=dim, hidden=cfg["intermediate_size"], n_layers=cfg["num_hidden_layers"],
                n_heads=n_heads, n_kv=n_kv, vocab=cfg["vocab_size"],
                seq_len=cfg["max_position_embeddings"], eps=float(cfg["rms_norm_eps"]),
                rope_base=float(cfg.get("rope_theta", 10000.0)), rope_style="rotate_half",
                emb=emb, layers=layers, final_norm=t["model.norm.weight"], wcls=wcls)


# ----------------------------------------------------------------------------
# Forward pass (fp64, whole sequence, causal mask)
# ----------------------------------------------------------------------------

def rmsnorm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def apply_rope(x, style, base):
    """x: [T, H, hd]; position of row t is t."""
    T, _, hd = x.shape
    half = hd // 2
    theta = base ** (-np.arange(0, hd, 2, dtype=np.float64) / hd)        # [half]
    ang = np.arange(T, dtype=np.float64)[:, None] * theta[None, :]       # [T, half]
    cos = np.cos(ang)[:, None, :]
    sin = np.sin(ang)[:, None, :]
    out = np.empty_like(x)
    if style == "interleaved":      # llama2.c: pairs (x[2j], x[2j+1])
        a, b = x[..., 0::2], x[..., 1::2]
        out[..., 0::2] = a * cos - b * sin
        out[..., 1::2] = a * sin + b * cos
    elif style == "rotate_half":    # HF: x*cos + rotate_half(x)*sin, pairs (x[j], x[j+half])
        a, b = x[..., :half], x[..., half:]
        out[..., :half] = a * cos - b * sin
        out[..., half:] = b * cos + a * sin
    else:
        raise ValueError(style)
    return out


def forward(m, tokens):
    tokens = np.asarray(tokens, dtype=np.int64)
    T = len(tokens)
    if T > m["seq_len"]:
        raise ValueError("sequence longer than seq_len")
    dim, nh, nkv = m["dim"], m["n_heads"], m["n_kv"]
    hd = dim // nh
    rep = nh // nkv
    x = m["emb"][tokens].copy()
    mask = np.triu(np.ones((T, T), dtype=bool), k=1)   # True where key is in the future
    for L in m["layers"]:
        h = rmsnorm(x, L["attn_norm"], m["eps"])
        q = (h @ L["wq"].T).reshape(T, nh, hd)
        k = (h @ L["wk"].T).reshape(T, nkv, hd)
        v = (h @ L["wv"].T).reshape(T, nkv, hd)
        q = apply_rope(q, m["rope_style"], m["rope_base"])
        k = apply_rope(k, m["rope_style"], m["rope_base"])
        k = np.repeat(k, rep, axis=1)   # q head h uses kv head h // rep
        v = np.repeat(v, rep, axis=1)
        qh = q.transpose(1, 0, 2)                                  # [H, T, hd]
        s = qh @ k.transpose(1, 2, 0) / math.sqrt(hd)              # [H, T(query), T(key)]
        s[:, mask] = -np.inf
        s -= s.max(axis=-1, keepdims=True)
        p = np.exp(s)
        p /= p.sum(axis=-1, keepdims=True)
        att = (p @ v.transpose(1, 0, 2)).transpose(1, 0, 2).reshape(T, dim)
        x = x + att @ L["wo"].T
        h = rmsnorm(x, L["ffn_norm"], m["eps"])
        g = h @ L["w1"].T
        u = h @ L["w3"].T
        x = x + (g / (1.0 + np.exp(-g)) * u) @ L["w2"].T
    x = rmsnorm(x, m["final_norm"], m["eps"])
    return x @ m["wcls"].T


def log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


# ----------------------------------------------------------------------------
# Generic BPE merge loop (heap + doubly linked list)
# ----------------------------------------------------------------------------

def bpe_merge(ids, pair_fn):
    """Repeatedly merge the adjacent pair with the smallest key (leftmost on ties).

    pair_fn(a, b) -> (key, new_id) or None.  Node indices keep their original
    order (a merge keeps the left node), so (key, left_index) gives
    'best key, leftmost' exactly as a full rescan would.
    """
    n = len(ids)
    if n < 2:
        return list(ids)
    tok = list(ids)
    prev = list(range(-1, n - 1))
    nxt = list(range(1, n + 1))
    nxt[-1] = -1
    alive = [True] * n
    ver = [0] * n
    heap = []

    def push(i, j):
        r = pair_fn(tok[i], tok[j])
        if r is not None:
            heapq.heappush(heap, (r[0], i, ver[i], j, ver[j], r[1]))

    for i in range(n - 1):
        push(i, i + 1)
    while heap:
        _key, i, vi, j, vj, new = heapq.heappop(heap)
        if not (alive[i] and alive[j] and ver[i] == vi and ver[j] == vj and nxt[i] == j):
            continue
        tok[i] = new
        ver[i] += 1
        alive[j] = False
        nxt[i] = nxt[j]
        if nxt[j] != -1:
            prev[nxt[j]] = i
        if prev[i] != -1:
            push(prev[i], i)
        if nxt[i] != -1:
            push(i, nxt[i])
    out = []
    i = 0
    while i != -1:
        out.append(tok[i])
        i = nxt[i]
    return out


# ----------------------------------------------------------------------------
# llama2.c tokenizer (tok512.bin)
# ----------------------------------------------------------------------------

class Llama2cTokenizer:
    def __init__(self, path, vocab_size):
        with open(path, "rb") as f:
            raw = f.read()
        (self.max_len,) = struct.unpack_from("<i", raw, 0)
        o = 4
        self.pieces, self.scores = [], []
        for _ in range(vocab_size):
            score, ln = struct.unpack_from("<fi", raw, o)
            o += 8
            self.pieces.append(raw[o:o + ln])
            self.scores.append(float(score))
            o += ln
        if o != len(raw):
            raise ValueError("tokenizer file has trailing bytes")
        self.lookup = {}
        for i, p in enumerate(self.pieces):
            if p in self.lookup:
                raise ValueError("duplicate piece %r" % p)
            self.lookup[p] = i

    def _pair(self, a, b):
        i = self.lookup.get(self.pieces[a] + self.pieces[b])
        if i is None:
            return None
        return (-self.scores[i], i)   # highest score first

    def encode(self, text):
        if text == "":
            return []
        ids = []
        for ch in " " + text:          # dummy prefix, then one symbol per code point
            b = ch.encode("utf-8")
            i = self.lookup.get(b)
            if i is not None:
                ids.append(i)
            else:
                ids.extend(x + 3 for x in b)   # byte fallback: <0xNN> is id NN+3
        return bpe_merge(ids, self._pair)

    def piece_bytes(self, i):
        p = self.pieces[i]
        if 3 <= i <= 258 and p.startswith(b"<0x") and p.endswith(b">") and len(p) == 6:
            return bytes([int(p[3:5], 16)])
        return p

    def decode(self, ids):
        b = b"".join(self.piece_bytes(i) for i in ids)
        if b.startswith(b" "):
            b = b[1:]
        return b.decode("utf-8", errors="replace")


# ----------------------------------------------------------------------------
# HF tokenizer.json BPE (SentencePiece-style, byte fallback)
# ----------------------------------------------------------------------------

class HFBPETokenizer:
    SP = "\u2581"

    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            tj = json.load(f)
        m = tj["model"]
        if m["type"] != "BPE":
            raise ValueError("not a BPE tokenizer")
        if tj.get("pre_tokenizer") is not None:
            raise ValueError("pre_tokenizer not supported by this reference")
        if m.get("continuing_subword_prefix") or m.get("end_of_word_suffix"):
            raise ValueError("subword prefix/suffix not supported")
        norm = tj["normalizer"]
        steps = norm["normalizers"] if norm and norm["type"] == "Sequence" else [norm]
        self.norm_steps = []
        for s in steps:
            if s["type"] == "Prepend":
                self.norm_steps.append(("prepend", s["prepend"]))
            elif s["type"] == "Replace" and "String" in s["pattern"]:
                self.norm_steps.append(("replace", s["pattern"]["String"], s["content"]))
            else:
                raise ValueError("unsupported normalizer %r" % s)
        self.vocab = dict(m["vocab"])
        self.id2tok = {i: t for t, i in self.vocab.items()}
        self.unk = m.get("unk_token")
        self.unk_id = self.vocab[self.unk] if self.unk is not None else None
        self.fuse_unk = bool(m.get("fuse_unk", False))
        self.byte_fallback = bool(m.get("byte_fallback", False))
        self.ignore_merges = bool(m.get("ignore_merges", False))
        self.merges = {}
        for rank, mg in enumerate(m["merges"]):
            if isinstance(mg, str):
                parts = mg.split(" ")
                if len(parts) != 2:
                    raise ValueError("bad merge %r" % mg)
                a, b = parts
            else:
                a, b = mg
            key = (self.vocab[a], self.vocab[b])
            if key not in self.merges:      # first (lowest) rank wins
                self.merges[key] = (rank, self.vocab[a + b])
        self.added = [t["content"] for t in tj.get("added_tokens", [])]
        self.has_byte_tokens = any(("<0x%02X>" % b) in self.vocab for b in range(256))

    def normalize(self, text):
        for st in self.norm_steps:
            if st[0] == "prepend":
                if text:                   # HF Prepend does nothing on empty input
                    text = st[1] + text
            else:
                text = text.replace(st[1], st[2])
        return text

    def _pair(self, a, b):
        return self.merges.get((a, b))     # (rank, new_id); lowest rank first

    def encode(self, text):
        for t in self.added:               # added tokens would be split out first by HF
            if t in text:
                raise ValueError("text contains added token %r; not supported" % t)
        s = self.normalize(text)
        if s == "":
            return []
        if self.ignore_merges and s in self.vocab:
            return [self.vocab[s]]
        ids = []
        unk_pending = False
        for ch in s:                       # whole text is one word
            i = self.vocab.get(ch)
            if i is not None:
                if unk_pending:
                    ids.append(self.unk_id)
                    unk_pending = False
                ids.append(i)
                continue
            if self.byte_fallback:
                bt = [self.vocab.get("<0x%02X>" % x) for x in ch.encode("utf-8")]
                if all(x is not None for x in bt):
                    # (HF does not flush a pending unk here; cannot happen with a
                    # vocab that has all byte tokens or none, as is the case here.)
                    if unk_pending:
                        ids.append(self.unk_id)
                        unk_pending = False
                    ids.extend(bt)
                    continue
            if self.unk_id is None:
                continue                   # HF silently drops it
            if unk_pending and self.fuse_unk:
                continue
            if unk_pending:
                ids.append(self.unk_id)
            unk_pending = True
        if unk_pending:
            ids.append(self.unk_id)
        return bpe_merge(ids, self._pair)

    def decode(self, ids):
        out = bytearray()
        for i in ids:
            t = self.id2tok[i]
            if len(t) == 6 and t.startswith("<0x") and t.endswith(">"):
                out.append(int(t[3:5], 16))
            else:
                out += t.replace(self.SP, " ").encode("utf-8")
        s = out.decode("utf-8", errors="replace")
        return s[1:] if s.startswith(" ") else s


# ----------------------------------------------------------------------------
# Evaluations
# ----------------------------------------------------------------------------

def perplexity(model, stream, ctx):
    w = ctx - 1
    total, count = 0.0, 0
    for start in range(0, len(stream), w):
        win = stream[start:start + w]
        lp = log_softmax(forward(model, [BOS] + win))
        total -= float(lp[np.arange(len(win)), np.asarray(win)].sum())
        count += len(win)
    nll = total / count
    return count, nll, math.exp(nll)


def greedy(model, prompt_ids, n):
    toks = [BOS] + list(prompt_ids)
    gen = []
    for _ in range(n):
        nxt = int(np.argmax(forward(model, toks)[-1]))
        toks.append(nxt)
        gen.append(nxt)
    return gen


def readme_nll_check(model, tok, text):
    """README: first 30 blank-line-separated chunks, BOS + enc(chunk) capped at
    255 tokens, fresh context each -> 3052 predicted tokens, mean NLL 1.362."""
    chunks = [c for c in text.split("\n\n") if c.strip()][:30]
    total, count = 0.0, 0
    for c in chunks:
        t = ([BOS] + tok.encode(c))[:255]
        lp = log_softmax(forward(model, t))
        total -= float(lp[np.arange(len(t) - 1), np.asarray(t[1:])].sum())
        count += len(t) - 1
    return count, total / count


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="shared data dir (contains models/, text/)")
    ap.add_argument("--out", required=True, help="output dir")
    args = ap.parse_args()
    t0 = time.time()
    os.makedirs(args.out, exist_ok=True)

    # valid slice: first 200 lines, byte-exact
    with open(os.path.join(args.data, "text/tinystories_valid_head.txt"), "rb") as f:
        lines = []
        for _ in range(VALID_LINES):
            ln = f.readline()
            if not ln:
                break
            lines.append(ln)
    slice_bytes = b"".join(lines)
    with open(os.path.join(args.out, "valid_slice.txt"), "wb") as f:
        f.write(slice_bytes)
    valid_text = slice_bytes.decode("utf-8")

    m260 = load_llama2c_legacy(os.path.join(args.data, M260))
    tk512 = Llama2cTokenizer(os.path.join(args.data, T512), m260["vocab"])
    m656 = load_hf_llama(os.path.join(args.data, M656))
    tk656 = HFBPETokenizer(os.path.join(args.data, T656))
    pairs = [(M260, T512, m260, tk512), (M656, T656, m656, tk656)]

    ref = {"logits": [], "encodings": [], "perplexity": [], "greedy": []}

    # encodings (+ round-trip checks)
    enc_cache = {}
    for _mp, tp, _m, tk in pairs:
        for text in ENCODE_TEXTS + [valid_text]:
            ids = tk.encode(text)
            enc_cache[(tp, text)] = ids
            ref["encodings"].append({"tokenizer": tp, "text": text, "ids": ids})
            lossless = tk is tk512 or tk.unk_id not in ids
            if lossless and tk.decode(ids) != text:
                raise AssertionError("%s: decode(encode(%r)) = %r" % (tp, text, tk.decode(ids)))

    # logits
    for mp, tp, m, tk in pairs:
        sent = [BOS] + tk.encode(LOGITS_SENTENCE)
        rnd = [BOS] + np.random.default_rng(SEED).integers(3, m["vocab"], size=N_RANDOM).tolist()
        for name, toks in (("sentence", sent), ("random40", rnd)):
            ref["logits"].append({"name": name, "model": mp, "tokens": toks,
                                  "logits": forward(m, toks).tolist()})

    # perplexity
    for mp, tp, m, tk in pairs:
        stream = enc_cache[(tp, valid_text)]
        for ctx in PPL_CTXS:
            n, nll, ppl = perplexity(m, stream, ctx)
            ref["perplexity"].append({"model": mp, "tokenizer": tp, "text_file": "valid_slice.txt",
                                      "ctx": ctx, "tokens": n, "nll": nll, "ppl": ppl})

    # greedy: the requested prompt, plus an empty prompt (= from BOS alone),
    # which is the setting in which the README quotes both models' outputs.
    for mp, tp, m, tk in pairs:
        expect = EXPECT_260K if mp == M260 else EXPECT_656K
        for prompt in (GREEDY_PROMPT, ""):
            pids = tk.encode(prompt)
            gen = greedy(m, pids, GREEDY_N)
            text = tk.decode(pids + gen)
            ref["greedy"].append({"model": mp, "tokenizer": tp, "prompt": prompt,
                                  "n": GREEDY_N, "ids": gen, "text": text})
            # README: stories260K gives the llama2.c sample (from BOS; with the
            # prompt too); 656K's quoted output is from BOS alone -- with the
            # "Once upon a time" prompt it continues differently (the prompt
            # encodes with a leading lone U+2581 token the model never saw after BOS).
            # (from BOS, 40 tokens of stories260K stop just short of the full
            # expected sentence, so there the shorter string must be a prefix.)
            ok = text.startswith(expect) if prompt else \
                text[:len(expect)] == expect[:len(text)] and len(text) > 60
            if (mp == M260 or prompt == "") and not ok:
                raise AssertionError("greedy sanity check FAILED for %s prompt %r:\n got: %r\n"
                                     " want prefix: %r" % (mp, prompt, text, expect))

    # README reference number for stories260K (different protocol; asserted)
    with open(os.path.join(args.data, "text/tinystories_valid_head.txt"), encoding="utf-8") as f:
        full_text = f.read()
    rn, rnll = readme_nll_check(m260, tk512, full_text)
    if rn != 3052 or abs(rnll - 1.362) > 5e-4:
        raise AssertionError("README NLL check FAILED: %d tokens, nll %.5f (want 3052, 1.362)"
                             % (rn, rnll))

    with open(os.path.join(args.out, "reference.json"), "w", encoding="utf-8") as f:
        json.dump(ref, f, ensure_ascii=False)

    for e in ref["perplexity"]:
        print("ppl  %-24s ctx=%-4d tokens=%-5d nll=%.6f ppl=%.4f"
              % (e["model"], e["ctx"], e["tokens"], e["nll"], e["ppl"]))
    for g in ref["greedy"]:
        print("greedy %s prompt=%r: %r" % (g["model"], g["prompt"], g["text"]))
    print("README check (stories260K, 30 chunks): %d tokens, nll=%.4f (README: 3052, 1.362)"
          % (rn, rnll))
    print("wrote %s in %.1f s" % (os.path.join(args.out, "reference.json"), time.time() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
