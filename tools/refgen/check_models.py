#!/usr/bin/env python3
"""Independent check of the folders written by make_models.py (dev tool).

For every fixtures/models/<name>/ this script
  * re-reads model.safetensors with its own numpy reader (validating the header: 8-byte
    length, JSON, space padding to a multiple of 8, contiguous in-bounds offsets),
  * re-tokenizes the texts from tokenizer.json (WordLevel + Whitespace regex),
  * recomputes logits and every submodule output with a second implementation written in
    numpy float64 (per-head loops, no torch) and compares them with ref.json,
  * checks the recorded gradients by central finite differences of the metric along random
    directions added at each submodule output (float64),
  * reports how far float32 (ref.json) is from float64, i.e. the rounding noise that any
    fp32 implementation carries, and prints the folder sizes.
With --small-a PATH (default /work/shared/fixtures/small-a when present) it also runs both
the torch implementation of make_models.py and the numpy one on that fixture's clean_ids and
compares them with its ref/model.json clean_logits and example0_activations.

    python3 tools/refgen/check_models.py [--dir fixtures/models] [--small-a PATH]
"""

import os
import sys

try:
    import numpy  # noqa: F401
    import torch  # noqa: F401
except ImportError:
    if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise SystemExit("check_models.py needs numpy and torch: apt-get install python3-torch python3-numpy")

import argparse
sys.dont_write_bytecode = True  # importing make_models must not leave __pycache__ in the repo
import json
import math
import re
import struct

import numpy as np
from math import erf

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))

# ------------------------------------------------------------------ safetensors (numpy)


def load_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    assert n % 8 == 0, "header length not a multiple of 8"
    hdr_bytes = raw[8:8 + n]
    assert hdr_bytes == hdr_bytes.rstrip(b" ") + b" " * (len(hdr_bytes) - len(hdr_bytes.rstrip(b" ")))
    header = json.loads(hdr_bytes)
    data = raw[8 + n:]
    spans = []
    out = {}
    sizes = {"F32": 4, "F16": 2, "BF16": 2, "BOOL": 1}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        dt, shape = info["dtype"], info["shape"]
        assert 0 <= a <= b <= len(data)
        assert b - a == int(np.prod(shape, dtype=np.int64)) * sizes[dt], name
        assert a % sizes[dt] == 0, f"{name} misaligned"
        spans.append((a, b))
        buf = data[a:b]
        if dt == "F32":
            arr = np.frombuffer(buf, dtype="<f4").astype(np.float64)
        elif dt == "F16":
            arr = np.frombuffer(buf, dtype="<f2").astype(np.float64)
        elif dt == "BF16":
            arr = (np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16).view(np.float32).astype(np.float64)
        elif dt == "BOOL":
            arr = np.frombuffer(buf, dtype=np.uint8).astype(bool)
        out[name] = (arr.reshape(shape), dt)
    spans.sort()
    pos = 0
    for a, b in spans:
        assert a == pos, "offsets not contiguous"
        pos = b
    assert pos == len(data), "trailing bytes"
    return out


# ------------------------------------------------------------------ tokenizer


def tokenize(tok_json, text):
    model = tok_json["model"]
    assert model["type"] == "WordLevel" and tok_json["pre_tokenizer"]["type"] == "Whitespace"
    for key in ("normalizer", "pre_tokenizer", "post_processor", "decoder"):
        assert key in tok_json
    vocab = model["vocab"]
    return [vocab.get(p, vocab[model["unk_token"]]) for p in re.findall(r"\w+|[^\w\s]+", text)]


# ------------------------------------------------------------------ numpy float64 models

_erf = np.vectorize(erf)


def ln(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def gelu_exact(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def attend(q, k, v, scale):
    """q, k, v: [s, hd] for one head; causal softmax attention."""
    s = q.shape[0]
    out = np.zeros_like(v)
    for i in range(s):
        sc = np.array([q[i] @ k[j] for j in range(i + 1)]) * scale
        sc = np.exp(sc - sc.max())
        out[i] = (sc / sc.sum()) @ v[: i + 1]
    return out


def rope(x, pos, rot, base):
    """rotate-half rotary on the first `rot` dims of one head vector x at position pos."""
    y = x.copy()
    half = rot // 2
    for i in range(half):
        theta = pos / base ** (2 * i / rot)
        c, s_ = math.cos(theta), math.sin(theta)
        a, b = x[i], x[i + half]
        y[i] = a * c - b * s_
        y[i + half] = b * c + a * s_
    return y


def np_forward(cfg, W, ids, delta=None):
    """Returns logits [s, V] and {sub: [s, d]}.  delta: {sub: [s, d]} added to that
    submodule's output (everything downstream sees the modified value)."""
    delta = delta or {}
    subs = {}

    def tap(name, x):
        if name in delta:
            x = x + delta[name]
        subs[name] = x
        return x

    s = len(ids)
    if cfg["model_type"] == "gpt_neox":
        d, H = cfg["hidden_size"], cfg["num_attention_heads"]
        hd = d // H
        rot = int(hd * cfg.get("rotary_pct", 0.25))
        base = cfg.get("rotary_emb_base", 10000)
        eps = cfg["layer_norm_eps"]
        act = gelu_exact if cfg.get("hidden_act", "gelu") == "gelu" else gelu_tanh
        x = tap("embed", W["gpt_neox.embed_in.weight"][ids])
        for l in range(cfg["num_hidden_layers"]):
            g = lambda k: W[f"gpt_neox.layers.{l}.{k}"]  # noqa: E731
            h = ln(x, g("input_layernorm.weight"), g("input_layernorm.bias"), eps)
            qkv = h @ g("attention.query_key_value.weight").T + g("attention.query_key_value.bias")
            o = np.zeros((s, d))
            for hh in range(H):
                blk = qkv[:, hh * 3 * hd:(hh + 1) * 3 * hd]
                q, k, v = blk[:, :hd], blk[:, hd:2 * hd], blk[:, 2 * hd:]
                q = np.stack([rope(q[p], p, rot, base) for p in range(s)])
                k = np.stack([rope(k[p], p, rot, base) for p in range(s)])
                o[:, hh * hd:(hh + 1) * hd] = attend(q, k, v, 1.0 / math.sqrt(hd))
            a = tap(f"attn_{l}", o @ g("attention.dense.weight").T + g("attention.dense.bias"))

            def mlp(z):
                z = act(z @ g("mlp.dense_h_to_4h.weight").T + g("mlp.dense_h_to_4h.bias"))
                return z @ g("mlp.dense_4h_to_h.weight").T + g("mlp.dense_4h_to_h.bias")
            ln2 = lambda z: ln(z, g("post_attention_layernorm.weight"), g("post_attention_layernorm.bias"), eps)  # noqa: E731,E501
            if cfg.get("use_parallel_residual", True):
                m = tap(f"mlp_{l}", mlp(ln2(x)))
                x = tap(f"resid_{l}", x + a + m)
            else:
                mid = x + a
                m = tap(f"mlp_{l}", mlp(ln2(mid)))
                x = tap(f"resid_{l}", mid + m)
        x = ln(x, W["gpt_neox.final_layer_norm.weight"], W["gpt_neox.final_layer_norm.bias"], eps)
        return x @ W["embed_out.weight"].T, subs

    # gpt2
    d, H = cfg["n_embd"], cfg["n_head"]
    hd = d // H
    eps = cfg.get("layer_norm_epsilon", 1e-5)
    pre0 = "transformer." if "transformer.wte.weight" in W else ""
    G = lambda k: W[pre0 + k]  # noqa: E731
    act = gelu_tanh if cfg.get("activation_function", "gelu_new") == "gelu_new" else gelu_exact
    scale = 1.0 / math.sqrt(hd) if cfg.get("scale_attn_weights", True) else 1.0
    x = tap("embed", G("wte.weight")[ids] + G("wpe.weight")[:s])
    for l in range(cfg["n_layer"]):
        g = lambda k: G(f"h.{l}.{k}")  # noqa: E731
        sc = scale / (l + 1) if cfg.get("scale_attn_by_inverse_layer_idx", False) else scale
        h = ln(x, g("ln_1.weight"), g("ln_1.bias"), eps)
        qkv = h @ g("attn.c_attn.weight") + g("attn.c_attn.bias")
        o = np.zeros((s, d))
        for hh in range(H):
            sl = slice(hh * hd, (hh + 1) * hd)
            o[:, sl] = attend(qkv[:, :d][:, sl], qkv[:, d:2 * d][:, sl], qkv[:, 2 * d:][:, sl], sc)
        a = tap(f"attn_{l}", o @ g("attn.c_proj.weight") + g("attn.c_proj.bias"))
        mid = x + a
        h = ln(mid, g("ln_2.weight"), g("ln_2.bias"), eps)
        m = tap(f"mlp_{l}", act(h @ g("mlp.c_fc.weight") + g("mlp.c_fc.bias")) @ g("mlp.c_proj.weight") + g("mlp.c_proj.bias"))
        x = tap(f"resid_{l}", mid + m)
    x = ln(x, G("ln_f.weight"), G("ln_f.bias"), eps)
    return x @ G("wte.weight").T, subs


# ------------------------------------------------------------------ checks


def maxdiff(a, b):
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))


def check_folder(folder):
    cfg = json.load(open(os.path.join(folder, "config.json")))
    tok = json.load(open(os.path.join(folder, "tokenizer.json")))
    json.load(open(os.path.join(folder, "tokenizer_config.json")))
    ref = json.load(open(os.path.join(folder, "ref.json")))
    st = load_safetensors(os.path.join(folder, "model.safetensors"))
    ignored = [k for k in st if k.endswith((".attn.bias", ".attn.masked_bias", "attention.bias",
                                            "attention.masked_bias", "rotary_emb.inv_freq"))]
    W = {k: v for k, (v, dt) in st.items() if k not in ignored}
    dtypes = sorted({dt for _, dt in st.values()})
    ok = True

    worst = {"logits": 0.0, "submodules": 0.0}
    for t, text in enumerate(ref["texts"]):
        ids = tokenize(tok, text)
        assert ids == ref["tokens"][t], (text, ids, ref["tokens"][t])
        logits, subs = np_forward(cfg, W, ids)
        assert logits.shape[1] == cfg["vocab_size"]
        worst["logits"] = max(worst["logits"], maxdiff(logits, ref["logits"][t]))
        for k in ref["submodule_order"]:
            worst["submodules"] = max(worst["submodules"], maxdiff(subs[k], ref["submodules"][k][t]))
    ok &= worst["logits"] < 2e-5 and worst["submodules"] < 2e-5

    # gradient check: directional finite differences in float64
    gc = ref["grad_check"]
    ids = ref["tokens"][gc["text"]]
    rng = np.random.default_rng(0)
    eps = 1e-4

    def metric(delta):
        lg, _ = np_forward(cfg, W, ids, delta)
        return lg[gc["position"], gc["plus"]] - lg[gc["position"], gc["minus"]]
    m0 = metric({})
    gworst = 0.0
    for k in ref["submodule_order"]:
        g = np.array(gc["grads"][k])
        v = rng.standard_normal(g.shape)
        fd = (metric({k: eps * v}) - metric({k: -eps * v})) / (2 * eps)
        rel = abs(fd - float((g * v).sum())) / max(1e-3, abs(fd))
        gworst = max(gworst, rel)
    ok &= abs(m0 - gc["value"]) < 2e-5 and gworst < 1e-4

    size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
    print(f"{os.path.basename(folder):18s} {'OK  ' if ok else 'FAIL'} {size / 1024:6.1f} KB  dtypes {','.join(dtypes):12s}"
          f" ignored {len(ignored):2d}  |fp64-ref| logits {worst['logits']:.1e} subs {worst['submodules']:.1e}"
          f"  metric {abs(m0 - gc['value']):.1e}  grad rel.err {gworst:.1e}")
    return ok


def check_small_a(path):
    sys.path.insert(0, HERE)
    import torch
    import make_models as mm
    cfg = json.load(open(os.path.join(path, "config.json")))
    ref = json.load(open(os.path.join(path, "ref", "model.json")))
    P = mm.read_safetensors(os.path.join(path, "model.safetensors"))
    ids = torch.tensor(ref["clean_ids"])
    with torch.no_grad():
        logits, subs = mm.forward(cfg, P, ids)
    d_logits = maxdiff(logits.numpy(), ref["clean_logits"])
    d_act = max(maxdiff(subs[k][0].detach().numpy(), v["x"]) for k, v in ref["example0_activations"].items())
    W = {k: v for k, (v, _) in load_safetensors(os.path.join(path, "model.safetensors")).items()}
    np_logits = np.stack([np_forward(cfg, W, row)[0] for row in ref["clean_ids"]])
    d_np = maxdiff(np_logits, ref["clean_logits"])
    print(f"small-a: torch fp32 vs clean_logits max|diff| {d_logits:.2e}; example0_activations {d_act:.2e};"
          f" numpy fp64 vs clean_logits {d_np:.2e}  (logits |max| {np.abs(np_logits).max():.2f})")
    return d_logits < 1e-4 and d_act < 1e-4 and d_np < 1e-4


def unsupported(folder):
    """What this second implementation does not model (rope scaling, bias-free attention), or None."""
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    if cfg["model_type"] not in ("gpt_neox", "gpt2"):
        return f"model_type {cfg['model_type']}: no second (numpy) implementation here; make_edge_refs re-runs it in float64"
    rope = cfg.get("rope_scaling") or cfg.get("rope_parameters") or {}
    kind = rope.get("rope_type", rope.get("type", "default"))
    if kind != "default":
        return f"rope type {kind}"
    if cfg.get("attention_bias") is False:
        return "attention_bias false"
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=os.path.join(REPO, "fixtures", "models"))
    ap.add_argument("--small-a", default="/work/shared/fixtures/small-a")
    args = ap.parse_args()
    ok = True
    for name in sorted(os.listdir(args.dir)):
        folder = os.path.join(args.dir, name)
        if not os.path.isfile(os.path.join(folder, "ref.json")):
            continue
        why = unsupported(folder)
        if why:
            print(f"{name}: skipped ({why}; checked by sfc's parity suites and rope-cases.json)")
            continue
        ok &= check_folder(folder)
    if args.small_a and os.path.isdir(args.small_a):
        ok &= check_small_a(args.small_a)
    print("all OK" if ok else "FAILURES")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
