#!/usr/bin/env python3
"""Reference generator for sfc's model-forward parity tests (dev tool, not shipped).

Creates tiny random-weight models in Hugging Face folder format under
``fixtures/models/<name>/`` (relative to the repository root) together with
reference outputs computed by an independent plain-PyTorch implementation of
Hugging Face's GPT-NeoX (Pythia) and GPT-2 forward passes:

    config.json            HF config (gpt_neox or gpt2)
    model.safetensors      HF parameter names; F32, F16 or BF16 (+ the legacy buffers some
                           real checkpoints carry, which loaders must ignore)
    tokenizer.json         HF `tokenizers` WordLevel model + Whitespace pre-tokenizer
    tokenizer_config.json
    ref.json               texts, token ids, logits, every submodule output and a
                           gradient check (see `build_ref` below for the exact layout)

and ``fixtures/models/rope-cases/rope-cases.json``: inv_freq, attention factor and cos/sin
tables of many rope configurations (no model), for core's unit tests.

Run from anywhere (needs Debian's python3-torch; `transformers`/`safetensors` are NOT used):

    python3 tools/refgen/make_models.py [--out fixtures/models] [--only NAME ...]

Everything is deterministic (fixed seeds, single thread).  The model math follows
Hugging Face exactly (transformers 4.4x `modeling_gpt_neox.py` / `modeling_gpt2.py`):

GPT-NeoX  x = embed_in[ids]                                   (no positional embedding)
          per layer: a = dense(attn(input_layernorm(x)))
            parallel:   x = mlp(post_attention_layernorm(x)) + a + x
            sequential: h = a + x;  x = mlp(post_attention_layernorm(h)) + h
          attn: qkv = query_key_value(x) viewed [b, s, H, 3*hd] -> q | k | v (per-head rows;
                no q/k/v nor dense biases when attention_bias is false)
                rotary (rotate-half) on the first int(hd * rotary_pct) dims of q and k,
                inv_freq = 1 / base^(arange(0, rot, 2) / rot), angles = pos * cat(f, f);
                rope scaling (v4 `rope_scaling`, v5 `rope_parameters`) as transformers'
                modeling_rope_utils (v5): linear, dynamic NTK (frequencies for the length of
                the call, offset + s, past max_position_embeddings), yarn (blended
                frequencies, cos/sin x attention factor), llama3 -- see `rope_init`
                scores = q k^T / sqrt(hd), causal mask, softmax (fp32)
          mlp: dense_4h_to_h(gelu_erf(dense_h_to_4h(x)))
          logits = embed_out(final_layer_norm(x))                  (untied, no bias)
GPT-2     x = wte[ids] + wpe[pos]
          per layer: x = x + c_proj(attn(ln_1(x)));  x = x + mlp(ln_2(x))
          Conv1D: y = x @ W + b with W [in, out]; c_attn output split q | k | v contiguously,
          heads = view [b, s, H, hd]; scores / sqrt(hd) (scale_attn_weights), optionally
          / (layer_idx + 1) (scale_attn_by_inverse_layer_idx); mlp: c_proj(gelu_new(c_fc(x)))
          logits = ln_f(x) @ wte^T                                  (tied)

Submodules recorded (feature-circuits roles -> TransformerLens hook names):
    embed   residual stream entering block 0: NeoX embed_in output (hook_embed),
            GPT-2 wte + wpe (blocks.0.hook_resid_pre)
    attn_l  attention output after the output projection (blocks.l.hook_attn_out)
    mlp_l   MLP output (blocks.l.hook_mlp_out)
    resid_l block output (blocks.l.hook_resid_post)

Weights are drawn with realistic scales (matrix std 0.05-0.5, layer-norm gains ~1 with noise,
non-zero biases) so that logits have magnitude ~1-10 and mistakes are not hidden by tiny
numbers.  F16/BF16 models are rounded once; the reference computes in fp32 from the rounded
weights (what HF does after `model.float()`).  All floats in ref.json are rounded to 7
significant digits.  `tools/refgen/check_models.py` re-reads the folders and verifies them
with a second, numpy float64 implementation.
"""

import os
import sys

try:
    import torch  # noqa: F401
except ImportError:  # e.g. a pyenv python3 shadowing Debian's /usr/bin/python3
    if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise SystemExit(f"{os.path.basename(sys.argv[0])} needs PyTorch: apt-get install python3-torch python3-numpy")

import argparse
import json
import math
import re
import struct

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import decoders  # noqa: E402

torch.set_num_threads(1)

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DEFAULT_OUT = os.path.join(REPO, "fixtures", "models")

# --------------------------------------------------------------------------------------------
# Vocabulary and tokenizer (HF tokenizers WordLevel + Whitespace pre-tokenizer)
# --------------------------------------------------------------------------------------------

SPECIALS = ["<|endoftext|>", "<|padding|>", "<|unk|>"]
WORDS = [
    "The", "the", "a", "cat", "cats", "dog", "dogs", "bird", "birds", "house", "houses",
    "tree", "trees", "river", "city", "sees", "see", "likes", "like", "runs", "run",
    "is", "are", "was", "were", "has", "have", "near", "behind", "under", "over",
    "with", "and", "that", "who", "big", "small", "old", "young", "red", "blue",
    "green", "happy", "sad", "quickly", "slowly", "very", "not", "it", "they",
    ".", ",", "?", "!", "he", "she", "we", "of", "to", "in", "on",
]
assert len(WORDS) == 61 and len(set(WORDS)) == 61
PUNCT = {".", ",", "?", "!"}

# HF `Whitespace` pre-tokenizer: splits on the regex \w+|[^\w\s]+
PRETOKENIZE = re.compile(r"\w+|[^\w\s]+")


def make_vocab(n_words):
    return {tok: i for i, tok in enumerate(SPECIALS + WORDS[:n_words])}


def tokenize(text, vocab):
    return [vocab.get(piece, vocab["<|unk|>"]) for piece in PRETOKENIZE.findall(text)]


def tokenizer_json(vocab):
    added = [
        {"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True}
        for i, t in enumerate(SPECIALS)
    ]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": None,
        "decoder": None,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<|unk|>"},
    }


def tokenizer_config_json(max_len):
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<|endoftext|>",
        "eos_token": "<|endoftext|>",
        "unk_token": "<|unk|>",
        "pad_token": "<|padding|>",
        "add_bos_token": False,
        "add_eos_token": False,
        "model_max_length": max_len,
    }


def make_texts(gen, words, lengths):
    """Texts of the given token lengths; text 1 contains punctuation glued to a word
    ("dog, the cat.") so the Whitespace pre-tokenizer's regex matters."""
    plain = [w for w in words if w not in PUNCT]
    texts = []
    for k, n in enumerate(lengths):
        if k == 1:
            toks = [plain[int(i)] for i in torch.randint(len(plain), (n - 2,), generator=gen)]
            cut = max(1, (n - 2) // 2)
            toks = toks[:cut] + [","] + toks[cut:] + ["."]
        else:
            toks = [plain[int(i)] for i in torch.randint(len(plain), (n,), generator=gen)]
        text = ""
        for t in toks:
            text += t if (t in PUNCT or not text) else " " + t
        texts.append(text)
    return texts


# --------------------------------------------------------------------------------------------
# safetensors (written by hand: Debian has no python3-safetensors)
# --------------------------------------------------------------------------------------------

ST_DTYPES = {  # name -> (torch dtype, bytes per element)
    "F32": (torch.float32, 4),
    "F16": (torch.float16, 2),
    "BF16": (torch.bfloat16, 2),
    "BOOL": (torch.bool, 1),
}


def tensor_bytes(t, st_dtype):
    t = t.detach().contiguous().cpu()
    if st_dtype == "F32":
        return t.to(torch.float32).numpy().astype("<f4").tobytes()
    if st_dtype == "F16":
        return t.to(torch.float16).numpy().astype("<f2").tobytes()
    if st_dtype == "BF16":  # torch rounds to nearest-even; reinterpret the bits
        return t.to(torch.bfloat16).view(torch.int16).numpy().astype("<i2").tobytes()
    if st_dtype == "BOOL":
        return t.to(torch.bool).numpy().astype("u1").tobytes()
    raise ValueError(st_dtype)


def write_safetensors(path, tensors, metadata=None):
    """tensors: name -> (torch tensor, safetensors dtype string).

    Layout as written by HF's `safetensors` (Rust): u64-LE header length, JSON header
    ({"__metadata__": {...}, name: {dtype, shape, data_offsets}}), padded with spaces to a
    multiple of 8, then the raw little-endian data.  Like HF, tensors are ordered by dtype
    size (largest first, keeping every tensor aligned) and then by name; the header lists
    them in that order (= sorted by name when all tensors share a dtype)."""
    order = sorted(tensors, key=lambda n: (-ST_DTYPES[tensors[n][1]][1], n))
    header = {"__metadata__": metadata or {"format": "pt"}}
    blobs, offset = [], 0
    for name in order:
        t, dt = tensors[name]
        b = tensor_bytes(t, dt)
        assert len(b) == t.numel() * ST_DTYPES[dt][1]
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """name -> fp32 torch tensor (F32/F16/BF16 upcast; BOOL -> bool)."""
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        buf = bytearray(raw[base + a:base + b])
        shape = info["shape"]
        dt = info["dtype"]
        if dt == "F32":
            t = torch.frombuffer(buf, dtype=torch.float32) if buf else torch.empty(0)
        elif dt == "F16":
            t = torch.frombuffer(buf, dtype=torch.float16).float()
        elif dt == "BF16":
            t = torch.frombuffer(buf, dtype=torch.int16).view(torch.bfloat16).float()
        elif dt == "BOOL":
            t = torch.frombuffer(buf, dtype=torch.uint8).bool()
        else:
            raise ValueError(f"unsupported dtype {dt}")
        out[name] = t.reshape(shape).clone()
    return out


# --------------------------------------------------------------------------------------------
# Models (plain PyTorch, Hugging Face semantics)
# --------------------------------------------------------------------------------------------

def layer_norm(x, w, b, eps):
    return F.layer_norm(x, (x.shape[-1],), w, b, eps)


def gelu_new(x):
    # transformers.activations.NewGELUActivation
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def activation(name):
    if name == "gelu":  # exact erf GELU (GELUActivation)
        return F.gelu
    if name in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
        # numerically these three agree to ~1e-7; gelu_new is the reference definition
        return gelu_new
    if name == "relu":
        return F.relu
    raise ValueError(f"unsupported activation {name}")


def causal_softmax(scores):
    """scores [..., s, t] for the last s of t positions (t - s cached ones first): query i sees keys 0..t-s+i."""
    s, t = scores.shape[-2], scores.shape[-1]
    mask = torch.ones(s, t, dtype=torch.bool).tril(diagonal=t - s)
    scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    return torch.softmax(scores, dim=-1)


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


# --------------------------------------------------------------------------------------------
# RoPE as transformers computes it (modeling_rope_utils, v5 semantics), written from its formulas
# --------------------------------------------------------------------------------------------

def rope_settings(cfg):
    """(rope_type, rope dict, base, rotary dims) of a GPT-NeoX config, as transformers standardizes
    it: the v4 `rope_scaling` dict wins over the v5 `rope_parameters` dict; rope_theta and
    partial_rotary_factor inside the dict win over the top-level NeoX keys; llama3 and yarn get
    original_max_position_embeddings (top-level first, else max_position_embeddings)."""
    rp = dict(cfg.get("rope_scaling") or cfg.get("rope_parameters") or {})
    rope_type = rp.get("rope_type", rp.get("type", "default"))
    base = rp.get("rope_theta", cfg.get("rotary_emb_base", cfg.get("rope_theta", 10000)))
    partial = rp.get("partial_rotary_factor", cfg.get("rotary_pct", cfg.get("partial_rotary_factor", 0.25)))
    if rope_type in ("llama3", "yarn"):
        if cfg.get("original_max_position_embeddings") is not None:
            rp["original_max_position_embeddings"] = cfg["original_max_position_embeddings"]
        rp.setdefault("original_max_position_embeddings", cfg["max_position_embeddings"])
    head_dim = cfg["hidden_size"] // cfg["num_attention_heads"]
    return rope_type, rp, base, int(head_dim * partial)


def rope_init(cfg, seq_len=None):
    """(inv_freq float32 [dim/2], attention_factor) = transformers' ROPE_INIT_FUNCTIONS[rope_type](config, seq_len).
    seq_len matters for `dynamic` only: transformers passes max(position_ids) + 1 (a tensor)."""
    rope_type, rp, base, dim = rope_settings(cfg)
    mpe = cfg["max_position_embeddings"]

    def default_inv(b):
        return 1.0 / (b ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))

    if rope_type == "default":
        return default_inv(base), 1.0
    if rope_type == "linear":
        inv = default_inv(base)
        inv /= rp["factor"]
        return inv, 1.0
    if rope_type == "dynamic":
        factor = rp["factor"]
        if seq_len is None:
            seq_len = mpe
        else:
            seq_len = torch.maximum(torch.tensor(seq_len), torch.tensor(mpe))
        b = base * ((factor * seq_len / mpe) - (factor - 1)) ** (dim / (dim - 2))
        return default_inv(b), 1.0
    if rope_type == "yarn":
        orig = rp["original_max_position_embeddings"]
        factor = rp.get("factor")
        if factor is None:
            factor = mpe / orig
        mscale, mscale_all_dim = rp.get("mscale"), rp.get("mscale_all_dim")

        def get_mscale(scale, m=1):
            return 1.0 if scale <= 1 else 0.1 * m * math.log(scale) + 1.0

        attention_factor = rp.get("attention_factor")
        if attention_factor is None:
            if mscale and mscale_all_dim:
                attention_factor = float(get_mscale(factor, mscale) / get_mscale(factor, mscale_all_dim))
            else:
                attention_factor = get_mscale(factor)
        beta_fast = rp.get("beta_fast") or 32
        beta_slow = rp.get("beta_slow") or 1

        def correction_dim(rotations):
            return (dim * math.log(orig / (rotations * 2 * math.pi))) / (2 * math.log(base))

        low, high = correction_dim(beta_fast), correction_dim(beta_slow)
        if rp.get("truncate", True):
            low, high = math.floor(low), math.ceil(high)
        low, high = max(low, 0), min(high, dim - 1)
        if low == high:
            high += 0.001
        ramp = torch.clamp((torch.arange(dim // 2, dtype=torch.float32) - low) / (high - low), 0, 1)
        pos_freqs = base ** (torch.arange(0, dim, 2).float() / dim)
        extrapolation, interpolation = 1.0 / pos_freqs, 1.0 / (factor * pos_freqs)
        extrapolation_share = 1 - ramp
        inv = interpolation * (1 - extrapolation_share) + extrapolation * extrapolation_share
        return inv, attention_factor
    if rope_type == "llama3":
        inv = default_inv(base)
        factor, low_ff, high_ff = rp["factor"], rp["low_freq_factor"], rp["high_freq_factor"]
        old = rp["original_max_position_embeddings"]
        low_wavelen, high_wavelen = old / low_ff, old / high_ff
        wavelen = 2 * math.pi / inv
        inv_l = torch.where(wavelen > low_wavelen, inv / factor, inv)
        smooth = (old / wavelen - low_ff) / (high_ff - low_ff)
        smoothed = (1 - smooth) * inv_l / factor + smooth * inv_l
        medium = ~(wavelen < high_wavelen) * ~(wavelen > low_wavelen)
        return torch.where(medium, smoothed, inv_l), 1.0
    raise ValueError(f"rope type {rope_type} not in the generator")


def rope_for_length(cfg, length):
    """What transformers' rotary embedding uses for a forward whose positions end at length - 1:
    dynamic_rope_update recomputes (with seq_len = length) only past max_position_embeddings."""
    rope_type = rope_settings(cfg)[0]
    if rope_type == "dynamic" and length > cfg["max_position_embeddings"]:
        return rope_init(cfg, seq_len=length)
    return rope_init(cfg)


def rope_cos_sin(inv_freq, attention_factor, positions):
    """transformers' RotaryEmbedding.forward: float32 angles inv_freq x position, cat(f, f),
    cos/sin times the attention factor.  positions: int64 [s] -> cos, sin [s, dim]."""
    freqs = (inv_freq[None, :, None].float() @ positions[None, None, :].float()).transpose(1, 2)[0]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos() * attention_factor, emb.sin() * attention_factor


def neox_forward(cfg, P, ids, dtype=torch.float32, past=None, rope=None):
    """ids: LongTensor [b, s] at positions offset..offset+s-1, offset = cached positions in `past`
    (per layer (k, v) [b, H, offset, hd], keys after rotary).  Returns (logits [b, s, V],
    {submodule: tensor [b, s, d]}, present = past + this call's keys/values).  `rope` overrides
    (inv_freq, attention_factor) (else what transformers uses for this length).
    `embed` is a leaf with requires_grad so every submodule can retain its gradient."""
    d = cfg["hidden_size"]
    H = cfg["num_attention_heads"]
    hd = d // H
    rot = rope_settings(cfg)[3]
    eps = cfg["layer_norm_eps"]
    act = activation(cfg.get("hidden_act", "gelu"))
    parallel = cfg.get("use_parallel_residual", True)
    p = lambda k: P[k].to(dtype)  # noqa: E731
    b, s = ids.shape
    offset = past[0][0].shape[2] if past else 0

    subs = {}
    x = p("gpt_neox.embed_in.weight")[ids].clone().requires_grad_(True)
    subs["embed"] = x

    inv_freq, attention_factor = rope if rope is not None else rope_for_length(cfg, offset + s)
    cos, sin = rope_cos_sin(inv_freq, attention_factor, torch.arange(offset, offset + s))
    cos, sin = cos.to(dtype), sin.to(dtype)  # [s, rot]

    present = []
    for l in range(cfg["num_hidden_layers"]):
        pre = f"gpt_neox.layers.{l}."
        h = layer_norm(x, p(pre + "input_layernorm.weight"), p(pre + "input_layernorm.bias"), eps)
        qkv_b = p(pre + "attention.query_key_value.bias") if (pre + "attention.query_key_value.bias") in P else None
        qkv = F.linear(h, p(pre + "attention.query_key_value.weight"), qkv_b)  # attention_bias false: no biases
        qkv = qkv.view(b, s, H, 3 * hd)
        q = qkv[..., :hd].permute(0, 2, 1, 3)
        k = qkv[..., hd:2 * hd].permute(0, 2, 1, 3)
        v = qkv[..., 2 * hd:].permute(0, 2, 1, 3)
        q_rot, q_pass = q[..., :rot], q[..., rot:]
        k_rot, k_pass = k[..., :rot], k[..., rot:]
        q = torch.cat((q_rot * cos + rotate_half(q_rot) * sin, q_pass), dim=-1)
        k = torch.cat((k_rot * cos + rotate_half(k_rot) * sin, k_pass), dim=-1)
        if past:
            k = torch.cat((past[l][0], k), dim=2)
            v = torch.cat((past[l][1], v), dim=2)
        present.append((k, v))
        scores = torch.matmul(q, k.transpose(-1, -2)) * (hd ** -0.5)
        w = causal_softmax(scores.float()).to(dtype)
        o = torch.matmul(w, v).permute(0, 2, 1, 3).reshape(b, s, d)
        dense_b = p(pre + "attention.dense.bias") if (pre + "attention.dense.bias") in P else None
        attn = F.linear(o, p(pre + "attention.dense.weight"), dense_b)
        subs[f"attn_{l}"] = attn

        def mlp(z):
            z = F.linear(z, p(pre + "mlp.dense_h_to_4h.weight"), p(pre + "mlp.dense_h_to_4h.bias"))
            return F.linear(act(z), p(pre + "mlp.dense_4h_to_h.weight"), p(pre + "mlp.dense_4h_to_h.bias"))

        ln2 = lambda z: layer_norm(z, p(pre + "post_attention_layernorm.weight"), p(pre + "post_attention_layernorm.bias"), eps)  # noqa: E731,E501
        if parallel:
            m = mlp(ln2(x))
            subs[f"mlp_{l}"] = m
            x = m + attn + x
        else:
            mid = attn + x
            m = mlp(ln2(mid))
            subs[f"mlp_{l}"] = m
            x = m + mid
        subs[f"resid_{l}"] = x

    x = layer_norm(x, p("gpt_neox.final_layer_norm.weight"), p("gpt_neox.final_layer_norm.bias"), eps)
    logits = F.linear(x, p("embed_out.weight"))
    return logits, subs, present


def gpt2_forward(cfg, P, ids, dtype=torch.float32):
    """GPT-2 (GPT2LMHeadModel).  P may use names with or without the `transformer.` prefix."""
    d = cfg["n_embd"]
    H = cfg["n_head"]
    hd = d // H
    eps = cfg.get("layer_norm_epsilon", 1e-5)
    act = activation(cfg.get("activation_function", "gelu_new"))
    scale = cfg.get("scale_attn_weights", True)
    by_layer = cfg.get("scale_attn_by_inverse_layer_idx", False)
    pre0 = "transformer." if "transformer.wte.weight" in P else ""
    p = lambda k: P[pre0 + k].to(dtype)  # noqa: E731
    b, s = ids.shape

    subs = {}
    wte = p("wte.weight")
    x = (wte[ids] + p("wpe.weight")[torch.arange(s)][None]).clone().requires_grad_(True)
    subs["embed"] = x

    for l in range(cfg["n_layer"]):
        pre = f"h.{l}."
        h = layer_norm(x, p(pre + "ln_1.weight"), p(pre + "ln_1.bias"), eps)
        qkv = torch.addmm(p(pre + "attn.c_attn.bias"), h.reshape(-1, d), p(pre + "attn.c_attn.weight")).view(b, s, 3 * d)
        q, k, v = qkv.split(d, dim=2)
        q, k, v = (z.view(b, s, H, hd).permute(0, 2, 1, 3) for z in (q, k, v))
        scores = torch.matmul(q, k.transpose(-1, -2))
        if scale:
            scores = scores / (float(hd) ** 0.5)
        if by_layer:
            scores = scores / float(l + 1)
        w = causal_softmax(scores.float()).to(dtype)
        o = torch.matmul(w, v).permute(0, 2, 1, 3).reshape(b, s, d)
        attn = torch.addmm(p(pre + "attn.c_proj.bias"), o.reshape(-1, d), p(pre + "attn.c_proj.weight")).view(b, s, d)
        subs[f"attn_{l}"] = attn
        mid = attn + x
        h = layer_norm(mid, p(pre + "ln_2.weight"), p(pre + "ln_2.bias"), eps)
        n_inner = p(pre + "mlp.c_fc.weight").shape[1]
        z = torch.addmm(p(pre + "mlp.c_fc.bias"), h.reshape(-1, d), p(pre + "mlp.c_fc.weight"))
        m = torch.addmm(p(pre + "mlp.c_proj.bias"), act(z), p(pre + "mlp.c_proj.weight")).view(b, s, d)
        assert z.shape[-1] == n_inner
        subs[f"mlp_{l}"] = m
        x = mid + m
        subs[f"resid_{l}"] = x

    x = layer_norm(x, p("ln_f.weight"), p("ln_f.bias"), eps)
    logits = torch.matmul(x, wte.t())
    return logits, subs


def is_decoder(cfg):
    return cfg["model_type"] in decoders.DEFAULTS or cfg["model_type"] in ("gemma3_text",)


def decoder(cfg, P, dtype=torch.float32):
    return decoders.Decoder(cfg, P, dtype, rope_init)


def decoder_forward(cfg, P, ids, dtype=torch.float32, past=None):
    """(logits, {submodule: tensor}, present) of a Gemma / Llama-family model; the embedding is a
    leaf with requires_grad so every submodule can retain its gradient."""
    m = decoder(cfg, P, dtype)
    subs = {}

    def grab(name):
        def f(x):
            subs[name] = x
            return x
        return f
    logits, present = m.run(ids, {n: grab(n) for n in m.submodules}, past=past, leaf=True)
    return logits, subs, present


def forward(cfg, P, ids, dtype=torch.float32):
    if is_decoder(cfg):
        return decoder_forward(cfg, P, ids, dtype)[:2]
    if cfg["model_type"] == "gpt_neox":
        return neox_forward(cfg, P, ids, dtype)[:2]
    if cfg["model_type"] == "gpt2":
        return gpt2_forward(cfg, P, ids, dtype)
    raise ValueError(cfg["model_type"])


def n_layers(cfg):
    if is_decoder(cfg):
        return decoders.text_config(cfg)[1]["num_hidden_layers"]
    return cfg["num_hidden_layers"] if cfg["model_type"] == "gpt_neox" else cfg["n_layer"]


def submodule_names(cfg):
    if is_decoder(cfg):
        return decoder(cfg, {}).submodules
    names = ["embed"]
    for l in range(n_layers(cfg)):
        names += [f"attn_{l}", f"mlp_{l}", f"resid_{l}"]
    return names


def hook_names(cfg):
    if is_decoder(cfg):
        m = decoder(cfg, {})
        return {s: m.hook_name(s) for s in m.submodules}
    hooks = {"embed": "hook_embed" if cfg["model_type"] == "gpt_neox" else "blocks.0.hook_resid_pre"}
    for l in range(n_layers(cfg)):
        hooks[f"attn_{l}"] = f"blocks.{l}.hook_attn_out"
        hooks[f"mlp_{l}"] = f"blocks.{l}.hook_mlp_out"
        hooks[f"resid_{l}"] = f"blocks.{l}.hook_resid_post"
    return hooks


# --------------------------------------------------------------------------------------------
# Random weights
# --------------------------------------------------------------------------------------------

def randn(gen, shape, std, mean=0.0):
    return torch.randn(*shape, generator=gen) * std + mean


def neox_weights(cfg, gen):
    d, V, I = cfg["hidden_size"], cfg["vocab_size"], cfg["intermediate_size"]
    P = {
        "gpt_neox.embed_in.weight": randn(gen, (V, d), 0.5),
        "embed_out.weight": randn(gen, (V, d), 0.4),
        "gpt_neox.final_layer_norm.weight": randn(gen, (d,), 0.1, 1.0),
        "gpt_neox.final_layer_norm.bias": randn(gen, (d,), 0.1),
    }
    for l in range(cfg["num_hidden_layers"]):
        pre = f"gpt_neox.layers.{l}."
        P.update({
            pre + "input_layernorm.weight": randn(gen, (d,), 0.1, 1.0),
            pre + "input_layernorm.bias": randn(gen, (d,), 0.1),
            pre + "post_attention_layernorm.weight": randn(gen, (d,), 0.1, 1.0),
            pre + "post_attention_layernorm.bias": randn(gen, (d,), 0.1),
            pre + "attention.query_key_value.weight": randn(gen, (3 * d, d), 0.25),
            pre + "attention.query_key_value.bias": randn(gen, (3 * d,), 0.1),
            pre + "attention.dense.weight": randn(gen, (d, d), 0.12),
            pre + "attention.dense.bias": randn(gen, (d,), 0.05),
            pre + "mlp.dense_h_to_4h.weight": randn(gen, (I, d), 0.2),
            pre + "mlp.dense_h_to_4h.bias": randn(gen, (I,), 0.1),
            pre + "mlp.dense_4h_to_h.weight": randn(gen, (d, I), 0.1),
            pre + "mlp.dense_4h_to_h.bias": randn(gen, (d,), 0.05),
        })
    return P


def gpt2_weights(cfg, gen):
    d, V, npos = cfg["n_embd"], cfg["vocab_size"], cfg["n_positions"]
    I = cfg.get("n_inner") or 4 * d
    P = {
        "wte.weight": randn(gen, (V, d), 0.5),
        "wpe.weight": randn(gen, (npos, d), 0.2),
        "ln_f.weight": randn(gen, (d,), 0.1, 1.0),
        "ln_f.bias": randn(gen, (d,), 0.1),
    }
    for l in range(cfg["n_layer"]):
        pre = f"h.{l}."
        P.update({
            pre + "ln_1.weight": randn(gen, (d,), 0.1, 1.0),
            pre + "ln_1.bias": randn(gen, (d,), 0.1),
            pre + "ln_2.weight": randn(gen, (d,), 0.1, 1.0),
            pre + "ln_2.bias": randn(gen, (d,), 0.1),
            pre + "attn.c_attn.weight": randn(gen, (d, 3 * d), 0.25),  # Conv1D [in, out]
            pre + "attn.c_attn.bias": randn(gen, (3 * d,), 0.1),
            pre + "attn.c_proj.weight": randn(gen, (d, d), 0.12),
            pre + "attn.c_proj.bias": randn(gen, (d,), 0.05),
            pre + "mlp.c_fc.weight": randn(gen, (d, I), 0.2),
            pre + "mlp.c_fc.bias": randn(gen, (I,), 0.1),
            pre + "mlp.c_proj.weight": randn(gen, (I, d), 0.1),
            pre + "mlp.c_proj.bias": randn(gen, (d,), 0.05),
        })
    return P


# --------------------------------------------------------------------------------------------
# Model specifications
# --------------------------------------------------------------------------------------------

def neox_config(**kw):
    cfg = {
        "architectures": ["GPTNeoXForCausalLM"],
        "model_type": "gpt_neox",
        "hidden_size": 32,
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "intermediate_size": 128,
        "rotary_pct": 0.25,
        "rotary_emb_base": 10000,
        "use_parallel_residual": True,
        "layer_norm_eps": 1e-05,
        "hidden_act": "gelu",
        "vocab_size": 64,
        "max_position_embeddings": 64,
        "tie_word_embeddings": False,
        "attention_bias": True,
        "attention_dropout": 0.0,
        "hidden_dropout": 0.0,
        "classifier_dropout": 0.1,
        "bos_token_id": 0,
        "eos_token_id": 0,
        "initializer_range": 0.02,
        "rope_scaling": None,
        "use_cache": True,
        "torch_dtype": "float32",
        "transformers_version": "4.44.0",
    }
    cfg.update(kw)
    return cfg


def neox_config_v5(rope_parameters, **kw):
    """A NeoX config.json as transformers v5 writes it: rotary settings inside `rope_parameters`
    (rope_type, rope_theta, partial_rotary_factor, scaling keys), no rotary_pct / rotary_emb_base /
    rope_scaling."""
    cfg = neox_config(**kw)
    for k in ("rotary_pct", "rotary_emb_base", "rope_scaling"):
        cfg.pop(k, None)
    cfg["rope_parameters"] = rope_parameters
    cfg["transformers_version"] = "5.0.0"
    return cfg


def gpt2_config_modern(**kw):
    cfg = {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "activation_function": "gelu_new",
        "attn_pdrop": 0.1,
        "bos_token_id": 0,
        "embd_pdrop": 0.1,
        "eos_token_id": 0,
        "initializer_range": 0.02,
        "layer_norm_epsilon": 1e-05,
        "n_embd": 32,
        "n_head": 4,
        "n_inner": None,
        "n_layer": 2,
        "n_positions": 32,
        "reorder_and_upcast_attn": False,
        "resid_pdrop": 0.1,
        "scale_attn_by_inverse_layer_idx": False,
        "scale_attn_weights": True,
        "summary_activation": None,
        "summary_first_dropout": 0.1,
        "summary_proj_to_labels": True,
        "summary_type": "cls_index",
        "summary_use_proj": True,
        "torch_dtype": "float32",
        "transformers_version": "4.44.0",
        "use_cache": True,
        "vocab_size": 64,
    }
    cfg.update(kw)
    return cfg


def gpt2_config_original(**kw):
    # the shape of openai-community/gpt2's config.json (no torch_dtype, n_ctx present,
    # scale_attn_* keys absent -> HF defaults)
    cfg = {
        "activation_function": "gelu_new",
        "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.1,
        "bos_token_id": 0,
        "embd_pdrop": 0.1,
        "eos_token_id": 0,
        "initializer_range": 0.02,
        "layer_norm_epsilon": 1e-05,
        "model_type": "gpt2",
        "n_ctx": 32,
        "n_embd": 48,
        "n_head": 3,
        "n_layer": 3,
        "n_positions": 32,
        "resid_pdrop": 0.1,
        "summary_activation": None,
        "summary_first_dropout": 0.1,
        "summary_proj_to_labels": True,
        "summary_type": "cls_index",
        "summary_use_proj": True,
        "task_specific_params": {"text-generation": {"do_sample": True, "max_length": 16}},
        "vocab_size": 64,
    }
    cfg.update(kw)
    return cfg


MODELS = [
    {
        "name": "neox-par-r25",
        "seed": 101,
        "config": neox_config(hidden_size=32, num_attention_heads=4, num_hidden_layers=2,
                              intermediate_size=128, rotary_pct=0.25, use_parallel_residual=True),
        "dtype": "F32",
        "n_words": 61,
        "lengths": [9, 6, 3],
    },
    {
        "name": "neox-seq-r100",
        "seed": 102,
        # intermediate_size deliberately != 4 * hidden_size; layer_norm_eps != 1e-5
        "config": neox_config(hidden_size=48, num_attention_heads=6, num_hidden_layers=3,
                              intermediate_size=96, rotary_pct=1.0, use_parallel_residual=False,
                              layer_norm_eps=1e-03, torch_dtype="float16"),
        "dtype": "F16",
        "n_words": 61,
        "lengths": [7, 5, 3],
    },
    {
        "name": "neox-par-r50-bf16",
        "seed": 103,
        # Pythia-like padded vocabulary: config vocab_size (64) > tokenizer size (56)
        "config": neox_config(hidden_size=32, num_attention_heads=2, num_hidden_layers=2,
                              intermediate_size=128, rotary_pct=0.5, rotary_emb_base=500,
                              use_parallel_residual=True, torch_dtype="bfloat16"),
        "dtype": "BF16",
        "n_words": 53,
        "lengths": [8, 6, 4],
        "neox_buffers": True,
    },
    # RoPE scaling and attention_bias false (text 0 is the long one; cache_pieces feed text 0
    # through a KV cache: prefill, single tokens, a chunk).
    {
        "name": "neox-rope-linear",
        "seed": 106,
        # transformers v4 spelling; text 0 (20 tokens) runs past max_position_embeddings (16)
        "config": neox_config(hidden_size=32, num_attention_heads=2, num_hidden_layers=2, intermediate_size=64,
                              rotary_pct=0.5, max_position_embeddings=16, rope_scaling={"type": "linear", "factor": 2.0}),
        "dtype": "F32",
        "n_words": 61,
        "lengths": [20, 9, 5],
        "cache_pieces": [8, 1, 1, 3, 1, 6],
    },
    {
        "name": "neox-rope-dynamic",
        "seed": 107,
        # dynamic NTK: text 0 (20 tokens) past max_position_embeddings (12) -> base rescaled for
        # length 20; text 1 exactly 12 (plain frequencies); cached decoding recomputes per step
        "config": neox_config(hidden_size=32, num_attention_heads=2, num_hidden_layers=2, intermediate_size=64,
                              rotary_pct=0.5, max_position_embeddings=12, use_parallel_residual=False,
                              rope_scaling={"type": "dynamic", "factor": 2.0}),
        "dtype": "F32",
        "n_words": 61,
        "lengths": [20, 12, 7],
        "cache_pieces": [8, 1, 1, 1, 1, 1, 1, 3, 1, 1, 1],
    },
    {
        "name": "neox-rope-yarn",
        "seed": 108,
        # transformers v5 spelling; full rotary so the attention factor scales every q/k dim
        "config": neox_config_v5({"rope_type": "yarn", "rope_theta": 10000.0, "partial_rotary_factor": 1.0, "factor": 4.0,
                                  "original_max_position_embeddings": 2048, "beta_fast": 32.0, "beta_slow": 1.0},
                                 hidden_size=32, num_attention_heads=2, num_hidden_layers=2, intermediate_size=64,
                                 max_position_embeddings=8192),
        "dtype": "F32",
        "n_words": 61,
        "lengths": [10, 7, 4],
        "cache_pieces": [4, 1, 1, 3, 1],
    },
    {
        "name": "neox-rope-llama3",
        "seed": 109,
        # late-v4 spelling (rope_type); low/high/medium wavelengths all occur at head_dim 16
        "config": neox_config(hidden_size=32, num_attention_heads=2, num_hidden_layers=2, intermediate_size=64,
                              rotary_pct=1.0, max_position_embeddings=2048,
                              rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                            "high_freq_factor": 4.0, "original_max_position_embeddings": 256}),
        "dtype": "F32",
        "n_words": 61,
        "lengths": [10, 7, 4],
        "cache_pieces": [4, 1, 1, 3, 1],
    },
    {
        "name": "neox-nobias",
        "seed": 110,
        # attention_bias false: no query_key_value / dense biases in the checkpoint
        "config": neox_config(hidden_size=32, num_attention_heads=4, num_hidden_layers=2, intermediate_size=64,
                              rotary_pct=0.25, use_parallel_residual=False, attention_bias=False),
        "dtype": "F32",
        "n_words": 61,
        "lengths": [9, 6, 3],
    },
    {
        "name": "gpt2-a",
        "seed": 104,
        "config": gpt2_config_modern(n_embd=32, n_head=4, n_layer=2),
        "dtype": "F32",
        "n_words": 61,
        "lengths": [9, 6, 3],
        "prefix": "transformer.",
        "gpt2_buffers": True,
    },
    {
        "name": "gpt2-b",
        "seed": 105,
        # n_inner deliberately != 4 * n_embd; layer_norm_epsilon != 1e-5
        "config": gpt2_config_original(n_embd=48, n_head=3, n_layer=3, n_inner=96, layer_norm_epsilon=1e-03),
        "dtype": "F16",
        "n_words": 61,
        "lengths": [7, 5, 3],
        "prefix": "",
    },
    # Gemma 2 / 3 and the Llama family (decoders.py): every option that changes the math is on,
    # and "effects" records how much switching each off changes the logits of text 0.
    {
        "name": "gemma2-a",
        "seed": 201,
        # GQA 4/2, head_dim 12 != 32/4 (attn_l width 48), query_pre_attn_scalar 16 != head_dim,
        # soft-caps small enough to bite, sliding window 4 < prompt on layers 0 and 2
        "config": {"model_type": "gemma2", "architectures": ["Gemma2ForCausalLM"], "hidden_size": 32,
                   "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 12, "num_hidden_layers": 3,
                   "intermediate_size": 64, "vocab_size": 72, "max_position_embeddings": 64, "rms_norm_eps": 1e-06,
                   "query_pre_attn_scalar": 16, "sliding_window": 4, "attn_logit_softcapping": 2.0,
                   "final_logit_softcapping": 4.0, "hidden_activation": "gelu_pytorch_tanh", "rope_theta": 10000.0,
                   "tie_word_embeddings": True, "torch_dtype": "float32"},
        "dtype": "F32",
        "n_words": 61,
        "lengths": [9, 6, 3],
        "cache_pieces": [3, 1, 1, 2, 1, 1],
        "effects": {"attn_logit_softcapping": {"attn_logit_softcapping": None},
                    "final_logit_softcapping": {"final_logit_softcapping": None},
                    "sliding_window": {"sliding_window": 64}},
    },
    {
        "name": "gemma3-a",
        "seed": 202,
        # gemma3_text: q/k norms, MQA (1 kv head), head_dim 16 != 32/4, local layers 0, 1 (pattern 3)
        # with their own rope base, global layer 2 with linear rope scaling, window 3 < prompt,
        # attention_bias (q/k/v and o_proj biases: the projection segment's bias)
        "config": {"model_type": "gemma3_text", "architectures": ["Gemma3ForCausalLM"], "hidden_size": 32,
                   "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 16, "num_hidden_layers": 3,
                   "intermediate_size": 64, "vocab_size": 72, "max_position_embeddings": 64, "rms_norm_eps": 1e-06,
                   "query_pre_attn_scalar": 16, "sliding_window": 3, "sliding_window_pattern": 3,
                   "rope_theta": 1000000.0, "rope_local_base_freq": 100.0, "rope_scaling": {"rope_type": "linear", "factor": 4.0},
                   "final_logit_softcapping": None, "attn_logit_softcapping": None, "attention_bias": True,
                   "hidden_activation": "gelu_pytorch_tanh", "tie_word_embeddings": True, "torch_dtype": "float32"},
        "dtype": "F32",
        "n_words": 61,
        "lengths": [9, 6, 3],
        "cache_pieces": [4, 1, 2, 1, 1],
        "effects": {"sliding_window": {"sliding_window": 64}, "rope_local_base_freq": {"rope_local_base_freq": 1000000.0}},
    },
    {
        "name": "llama-a",
        "seed": 203,
        # Llama 3 rope scaling (all three wavelength bands at head_dim 16; head_dim given, != 32/4),
        # GQA 4/2, MLP biases (mlp_bias), untied head
        "config": {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 32,
                   "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "num_hidden_layers": 2,
                   "intermediate_size": 96, "vocab_size": 64, "max_position_embeddings": 2048, "rms_norm_eps": 1e-05,
                   "hidden_act": "silu", "rope_theta": 500000.0, "attention_bias": False, "mlp_bias": True,
                   "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                    "original_max_position_embeddings": 256},
                   "tie_word_embeddings": False, "torch_dtype": "float32"},
        "dtype": "F32",
        "n_words": 61,
        "lengths": [10, 7, 4],
        "cache_pieces": [4, 1, 1, 3, 1],
        "effects": {"rope_scaling": {"rope_scaling": None}},
    },
    {
        "name": "mistral-bf16",
        "seed": 204,
        # BF16 storage, sliding window 4 < prompt on every layer, head_dim 16 != 32/4, MQA
        "config": {"model_type": "mistral", "architectures": ["MistralForCausalLM"], "hidden_size": 32,
                   "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 16, "num_hidden_layers": 2,
                   "intermediate_size": 64, "vocab_size": 64, "max_position_embeddings": 128, "rms_norm_eps": 1e-05,
                   "hidden_act": "silu", "rope_theta": 1000000.0, "sliding_window": 4,
                   "tie_word_embeddings": False, "torch_dtype": "bfloat16"},
        "dtype": "BF16",
        "n_words": 61,
        "lengths": [9, 6, 3],
        "cache_pieces": [3, 1, 1, 3, 1],
        "effects": {"sliding_window": {"sliding_window": None}},
    },
    {
        "name": "qwen2-a",
        "seed": 205,
        # q/k/v biases (o_proj none), GQA 4/2, tied head (Qwen2-0.5B style)
        "config": {"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], "hidden_size": 32,
                   "num_attention_heads": 4, "num_key_value_heads": 2, "num_hidden_layers": 2,
                   "intermediate_size": 80, "vocab_size": 64, "max_position_embeddings": 128, "rms_norm_eps": 1e-06,
                   "hidden_act": "silu", "rope_theta": 1000000.0, "use_sliding_window": False, "sliding_window": 4,
                   "max_window_layers": 1, "tie_word_embeddings": True, "torch_dtype": "float32"},
        "dtype": "F32",
        "n_words": 61,
        "lengths": [9, 6, 3],
    },
    {
        "name": "qwen3-a",
        "seed": 206,
        # per-head q/k RMSNorm, head_dim 16 != 32/4, GQA 4/2, untied head
        "config": {"model_type": "qwen3", "architectures": ["Qwen3ForCausalLM"], "hidden_size": 32,
                   "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "num_hidden_layers": 2,
                   "intermediate_size": 64, "vocab_size": 64, "max_position_embeddings": 128, "rms_norm_eps": 1e-06,
                   "hidden_act": "silu", "rope_theta": 1000000.0, "attention_bias": False, "use_sliding_window": False,
                   "tie_word_embeddings": False, "torch_dtype": "float32"},
        "dtype": "F32",
        "n_words": 61,
        "lengths": [9, 6, 3],
    },
]

# --------------------------------------------------------------------------------------------
# Reference outputs
# --------------------------------------------------------------------------------------------


def r7(x):
    """Nested lists of floats rounded to 7 significant digits."""
    if isinstance(x, torch.Tensor):
        x = x.detach().double().tolist()
    if isinstance(x, list):
        return [r7(v) for v in x]
    return float(f"{x:.7g}")


def build_ref(spec, cfg, P, texts, vocab, gen):
    """ref.json layout:
    {
      "format": "sfc.refgen/v1", "model": name, "model_type": ..., "weights_dtype": "F32|F16|BF16",
      "compute_dtype": "float32", "torch_version": ..., "seed": ...,
      "submodule_order": ["embed", "attn_0", "mlp_0", "resid_0", ...],
      "hooks": {submodule: TransformerLens hook name},
      "texts": [3 strings],
      "tokens": [[ids] per text],
      "logits": [[[V floats] per position] per text],
      "submodules": {submodule: [[[d floats] per position] per text]},
      "grad_check": {"text": 0, "position": last, "plus": t1, "minus": t2,
                     "metric": "logits[text][last][plus] - logits[text][last][minus]",
                     "value": m, "grads": {submodule: [[d floats] per position]}}
    }
    Each text is run on its own (batch 1, no padding)."""
    tokens = [tokenize(t, vocab) for t in texts]
    logits_all, subs_all = [], {k: [] for k in submodule_names(cfg)}
    for ids in tokens:
        with torch.no_grad():
            logits, subs = forward(cfg, P, torch.tensor([ids]))
        logits_all.append(r7(logits[0]))
        for k in subs_all:
            subs_all[k].append(r7(subs[k][0]))

    # gradient check on text 0: m = logits[last, plus] - logits[last, minus]
    n_tok = len(vocab)
    pick = torch.randperm(n_tok - 3, generator=gen)[:2] + 3
    plus, minus = int(pick[0]), int(pick[1])
    logits, subs = forward(cfg, P, torch.tensor([tokens[0]]))
    for k, t in subs.items():
        if k != "embed":
            t.retain_grad()
    m = logits[0, -1, plus] - logits[0, -1, minus]
    m.backward()
    grads = {k: r7(subs[k].grad[0]) for k in submodule_names(cfg)}

    extra = {}
    if spec.get("cache_pieces"):
        extra["cache_check"] = cache_check(cfg, P, tokens[0], spec["cache_pieces"])
    if spec.get("effects"):
        extra["option_effects"] = option_effects(spec, cfg, P, tokens[0])
    if cfg["model_type"] == "gpt_neox" and rope_settings(cfg)[0] != "default":
        extra["rope"] = rope_record(cfg, P, tokens[0])

    return {
        "format": "sfc.refgen/v1",
        "model": spec["name"],
        "model_type": cfg["model_type"],
        "weights_dtype": spec["dtype"],
        "compute_dtype": "float32",
        "torch_version": torch.__version__,
        "seed": spec["seed"],
        "submodule_order": submodule_names(cfg),
        "hooks": hook_names(cfg),
        "texts": texts,
        "tokens": tokens,
        "logits": logits_all,
        "submodules": subs_all,
        "grad_check": {
            "text": 0,
            "position": len(tokens[0]) - 1,
            "plus": plus,
            "minus": minus,
            "metric": "logits[text][position][plus] - logits[text][position][minus]",
            "value": r7(m.item()),
            "grads": grads,
        },
        **extra,
    }


def cache_check(cfg, P, ids, pieces):
    """Text `ids` fed in `pieces` through a KV cache, like transformers' cached generation: each call
    sees positions offset..offset+n-1 and attends to the cached (already rotated) keys; dynamic
    NTK uses the frequencies for the total length offset + n, so cached keys keep the rotation of
    the call that wrote them.  "logits" holds every position's logits, in order."""
    assert sum(pieces) == len(ids)
    rows, past, at = [], None, 0
    run = decoder_forward if is_decoder(cfg) else neox_forward
    with torch.no_grad():
        for n in pieces:
            logits, _, past = run(cfg, P, torch.tensor([ids[at:at + n]]), past=past)
            rows.append(logits[0])
            at += n
    return {"text": 0, "pieces": pieces, "logits": r7(torch.cat(rows))}


def option_effects(spec, cfg, P, ids):
    """For each config change in spec["effects"] (an option switched off), max |delta logits| of
    text 0: how far a loader that ignored the option would be from the reference."""
    with torch.no_grad():
        base = forward(cfg, P, torch.tensor([ids]))[0]
        out = {}
        for label, change in spec["effects"].items():
            other = json.loads(json.dumps(cfg))
            target = other.get("text_config", other)
            target.update(change)
            P2 = P
            if "tie_word_embeddings" in change:
                P2 = dict(P)
            out[label] = r7((forward(other, P2, torch.tensor([ids]))[0] - base).abs().max().item())
    return out


def rope_record(cfg, P, ids):
    """The rope type, its frequencies and attention factor, and how much it changes the logits of
    `ids` against plain RoPE with the same base and dims ("effect": the fixture fails a loader
    that ignores the scaling by that much)."""
    rope_type, _, base, dim = rope_settings(cfg)
    inv, attention_factor = rope_init(cfg)
    long_inv, _ = rope_for_length(cfg, len(ids))
    plain = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    with torch.no_grad():
        scaled = neox_forward(cfg, P, torch.tensor([ids]))[0]
        unscaled = neox_forward(cfg, P, torch.tensor([ids]), rope=(plain, 1.0))[0]
    return {
        "type": rope_type, "rotary_dims": dim, "base": base,
        "inv_freq": r7(inv), "attention_factor": attention_factor,
        "inv_freq_text0": r7(long_inv),
        "effect": r7((scaled - unscaled).abs().max().item()),
    }


def dump_json(path, obj, compact=False):
    """Writes `obj` as JSON (+ newline) atomically: a temporary file renamed over `path`."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        if compact:
            json.dump(obj, f, separators=(",", ":"))
        else:
            json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, path)


def make_model(spec, out_dir):
    cfg = spec["config"]
    gen = torch.Generator().manual_seed(spec["seed"])
    st = spec["dtype"]
    if is_decoder(cfg):
        P = {("" if k.startswith("lm_head") else spec.get("prefix", "model.")) + k: v
             for k, v in decoders.random_weights(cfg, gen, randn).items()}
    elif cfg["model_type"] == "gpt_neox":
        P = neox_weights(cfg, gen)
    else:
        P = gpt2_weights(cfg, gen)
    if cfg["model_type"] == "gpt_neox" and not cfg.get("attention_bias", True):
        P = {k: v for k, v in P.items() if not k.endswith(("attention.query_key_value.bias", "attention.dense.bias"))}
    # round once to the storage dtype; the reference uses exactly the stored values
    P = {k: v.to(ST_DTYPES[st][0]).float() for k, v in P.items()}

    vocab = make_vocab(spec["n_words"])
    assert len(vocab) <= (cfg["vocab_size"])
    texts = make_texts(gen, list(vocab)[3:], spec["lengths"])

    # tensors as stored (names, extra buffers)
    stored = {}
    if is_decoder(cfg) or cfg["model_type"] == "gpt_neox":
        for k, v in P.items():
            stored[k] = (v, st)
        if spec.get("neox_buffers"):
            # what older transformers versions saved as persistent buffers (and what a
            # `.to(bfloat16)` does to them): causal mask as BOOL, masked_bias and inv_freq
            # as the float storage dtype
            npos = cfg["max_position_embeddings"]
            hd = cfg["hidden_size"] // cfg["num_attention_heads"]
            rot = int(hd * cfg["rotary_pct"])
            inv_freq = 1.0 / (cfg["rotary_emb_base"] ** (torch.arange(0, rot, 2).float() / rot))
            for l in range(cfg["num_hidden_layers"]):
                pre = f"gpt_neox.layers.{l}.attention."
                stored[pre + "bias"] = (torch.ones(npos, npos, dtype=torch.bool).tril().view(1, 1, npos, npos), "BOOL")
                stored[pre + "masked_bias"] = (torch.tensor(-1e9), st)
                stored[pre + "rotary_emb.inv_freq"] = (inv_freq, st)
    else:
        prefix = spec["prefix"]
        for k, v in P.items():
            stored[prefix + k] = (v, st)
        if spec.get("gpt2_buffers"):
            # GPT-2 checkpoints carry the causal mask as a float [1, 1, n_ctx, n_ctx] buffer
            # (and old ones the scalar masked_bias = -1e4)
            npos = cfg["n_positions"]
            for l in range(cfg["n_layer"]):
                stored[f"{prefix}h.{l}.attn.bias"] = (torch.ones(npos, npos).tril().view(1, 1, npos, npos), st)
                stored[f"{prefix}h.{l}.attn.masked_bias"] = (torch.tensor(-1e4), st)
        # lm_head.weight absent: tied to wte

    folder = os.path.join(out_dir, spec["name"])
    os.makedirs(folder, exist_ok=True)
    dump_json(os.path.join(folder, "config.json"), cfg)
    write_safetensors(os.path.join(folder, "model.safetensors"), stored)
    dump_json(os.path.join(folder, "tokenizer.json"), tokenizer_json(vocab))
    max_len = cfg.get("max_position_embeddings", cfg.get("n_positions"))
    dump_json(os.path.join(folder, "tokenizer_config.json"), tokenizer_config_json(max_len))

    # reference from the weights as re-read from disk (catches writer bugs)
    P_disk = read_safetensors(os.path.join(folder, "model.safetensors"))
    for k, v in P.items():
        key = k if cfg["model_type"] == "gpt_neox" or is_decoder(cfg) else spec["prefix"] + k
        assert torch.equal(P_disk[key], v), key
    ref = build_ref(spec, cfg, P_disk, texts, vocab, gen)
    dump_json(os.path.join(folder, "ref.json"), ref, compact=True)
    return folder, ref


# --------------------------------------------------------------------------------------------
# RoPE cases: frequencies and tables of many rope configurations, without a model
# --------------------------------------------------------------------------------------------

def rope_case_config(head_dim, max_positions, **kw):
    """A minimal NeoX config.json around a rope configuration (1 head, 1 layer)."""
    cfg = {"model_type": "gpt_neox", "hidden_size": head_dim, "num_attention_heads": 1, "num_hidden_layers": 1,
           "intermediate_size": 4, "vocab_size": 8, "max_position_embeddings": max_positions}
    cfg.update(kw)
    return cfg


ROPE_CASES = [
    ("default (v4, rope_scaling null)", rope_case_config(16, 64, rotary_pct=0.5, rotary_emb_base=10000, rope_scaling=None), [9]),
    ("default (v5 rope_parameters, theta 500)",
     rope_case_config(8, 64, rope_parameters={"rope_type": "default", "rope_theta": 500.0, "partial_rotary_factor": 1.0}), [9]),
    ("linear (v4 type)", rope_case_config(16, 16, rotary_pct=1.0, rope_scaling={"type": "linear", "factor": 2.0}), [20]),
    ("linear (v5, factor 3, partial 0.25)",
     rope_case_config(32, 64, rope_parameters={"rope_type": "linear", "factor": 3.0, "rope_theta": 10000.0,
                                               "partial_rotary_factor": 0.25}), [9]),
    ("dynamic (v4 type, factor 2)", rope_case_config(16, 12, rotary_pct=0.5, rope_scaling={"type": "dynamic", "factor": 2.0}),
     [5, 12, 13, 20, 24]),
    ("dynamic (v5, factor 3.5, theta 5e5)",
     rope_case_config(64, 100, rope_parameters={"rope_type": "dynamic", "factor": 3.5, "rope_theta": 500000.0,
                                                "partial_rotary_factor": 1.0}), [100, 101, 250, 350]),
    ("yarn (v5, orig 2048)",
     rope_case_config(16, 8192, rope_parameters={"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 2048,
                                                 "rope_theta": 10000.0, "partial_rotary_factor": 1.0}), [12]),
    ("yarn (v4 rope_type, no original: max_position_embeddings)",
     rope_case_config(32, 4096, rotary_pct=1.0, rope_scaling={"rope_type": "yarn", "factor": 8.0}), [12]),
    ("yarn (attention_factor, beta_fast 16, beta_slow 2)",
     rope_case_config(32, 4096, rotary_pct=1.0,
                      rope_scaling={"rope_type": "yarn", "factor": 4.0, "attention_factor": 0.9, "beta_fast": 16,
                                    "beta_slow": 2, "original_max_position_embeddings": 1024}), [12]),
    ("yarn (mscale 1, mscale_all_dim 0.5)",
     rope_case_config(64, 163840, rotary_pct=1.0,
                      rope_scaling={"rope_type": "yarn", "factor": 40.0, "mscale": 1.0, "mscale_all_dim": 0.5,
                                    "beta_fast": 32, "beta_slow": 1, "original_max_position_embeddings": 4096}), [12]),
    ("yarn (truncate false)",
     rope_case_config(16, 8192, rope_parameters={"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 2048,
                                                 "truncate": False, "rope_theta": 10000.0, "partial_rotary_factor": 1.0}), [12]),
    ("yarn (v5 factor null: max / original)",
     rope_case_config(16, 8192, rope_parameters={"rope_type": "yarn", "factor": None, "original_max_position_embeddings": 2048,
                                                 "rope_theta": 10000.0, "partial_rotary_factor": 1.0}), [12]),
    ("yarn (partial rotary 0.25, v4)",
     rope_case_config(32, 4096, rotary_pct=0.25,
                      rope_scaling={"rope_type": "yarn", "factor": 2.0, "original_max_position_embeddings": 512}), [12]),
    ("llama3 (tiny: all three wavelength bands)",
     rope_case_config(16, 2048, rotary_pct=1.0,
                      rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                    "original_max_position_embeddings": 256}), [12]),
    ("llama3 (Llama 3.1 values, v5)",
     rope_case_config(128, 131072, rope_parameters={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                                    "high_freq_factor": 4.0, "original_max_position_embeddings": 8192,
                                                    "rope_theta": 500000.0, "partial_rotary_factor": 1.0}), [12]),
]


def make_rope_cases(out_dir):
    """rope-cases.json: per case the config, and per length the inv_freq transformers uses for a
    forward of that length (dynamic NTK depends on it) and, for small ones, the cos/sin tables
    of positions 0..length-1 (attention factor applied)."""
    cases = []
    for name, cfg, lengths in ROPE_CASES:
        rope_type, _, _, dim = rope_settings(cfg)
        by_length = []
        for length in lengths:
            inv, attention_factor = rope_for_length(cfg, length)
            row = {"length": length, "inv_freq": [float(x) for x in inv.tolist()], "attention_factor": attention_factor}
            if dim <= 16 and length <= 32:
                cos, sin = rope_cos_sin(inv, attention_factor, torch.arange(length))
                row["cos"] = [float(x) for x in cos.flatten().tolist()]
                row["sin"] = [float(x) for x in sin.flatten().tolist()]
            by_length.append(row)
        cases.append({"name": name, "type": rope_type, "rotary_dims": dim, "config": cfg, "lengths": by_length})
    folder = os.path.join(out_dir, "rope-cases")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "rope-cases.json")
    dump_json(path, {"format": "sfc.refgen.rope/v1", "torch_version": torch.__version__, "cases": cases}, compact=True)
    return path


def folder_size(folder):
    return sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT, help="output directory (default fixtures/models)")
    ap.add_argument("--only", nargs="*", help="model names to (re)generate")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if not args.only or "rope-cases" in args.only:
        path = make_rope_cases(args.out)
        print(f"{'rope-cases':20s} {os.path.getsize(path) / 1024:7.1f} KB  {len(ROPE_CASES)} rope configurations")
    for spec in MODELS:
        if args.only and spec["name"] not in args.only:
            continue
        folder, ref = make_model(spec, args.out)
        lg = torch.tensor(ref["logits"][0])
        effect = f"  rope effect {ref['rope']['effect']:.3f}" if "rope" in ref else ""
        print(f"{spec['name']:20s} {folder_size(folder) / 1024:7.1f} KB  tokens {[len(t) for t in ref['tokens']]}"
              f"  |logits| max {lg.abs().max():.2f} std {lg.std():.2f}  metric {ref['grad_check']['value']:.4f}{effect}")


if __name__ == "__main__":
    main()
