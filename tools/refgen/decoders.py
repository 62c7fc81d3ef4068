"""Plain-PyTorch forward passes of Hugging Face's RMSNorm decoders (dev tool, not shipped).

Gemma 2 (modeling_gemma2.py), Gemma 3 text (modeling_gemma3.py, Gemma3ForCausalLM), Llama
(modeling_llama.py), Mistral (modeling_mistral.py), Qwen 2 (modeling_qwen2.py) and Qwen 3
(modeling_qwen3.py), written from transformers' modeling code (eager attention path), used by
make_models.py (float32 references, gradients, KV-cache runs) and make_edge_refs.py (float64, with
a hook at every submodule).  `transformers` is not used.

Per layer, with x the residual stream:
  Llama family  a = o_proj(attn(input_layernorm(x)));  h = x + a
                m = down(act(gate(n)) * up(n)), n = post_attention_layernorm(h);  x = h + m
  Gemma 2 / 3   z = attn(input_layernorm(x))  (merged heads, o_proj's input)
                h = x + post_attention_layernorm(o_proj(z))
                m = post_feedforward_layernorm(down(act(gate(n)) * up(n))), n = pre_feedforward_layernorm(h)
                x = h + m
  attn: q|k|v projections (Qwen 2: with biases; attention_bias: q/k/v/o biases), heads [b, H, s, hd],
        q_norm / k_norm per head (Qwen 3, Gemma 3) before rotary, rotate-half rotary on all hd dims,
        repeat_kv (kv head of query head h = h // (H / Hkv)), scores = q k^T * scaling
        (Gemma: query_pre_attn_scalar^-1/2, else hd^-1/2), Gemma 2 soft-cap cap * tanh(scores / cap),
        + causal mask (sliding layers: key j visible from query i iff i - W < j <= i), softmax in fp32, @ v
  RMSNorm: x / sqrt(mean(x^2) + eps) in fp32, times w (Llama family) or (1 + w) (Gemma)
  embeddings: Gemma multiplies by hidden_size ** 0.5 as a tensor of the hidden dtype
  logits: lm_head(norm(x)) (tied: embed_tokens), Gemma 2 final soft-cap cap * tanh(logits / cap)

Submodules (feature-circuits roles -> TransformerLens/SAELens hooks):
  Llama family: embed (hook_embed), attn_l = o_proj output (blocks.l.hook_attn_out),
                mlp_l = mlp output (blocks.l.hook_mlp_out), resid_l = layer output (hook_resid_post)
  Gemma:        no embed by default (feature-circuits' include_embed=False), attn_l = z (blocks.l.attn.hook_z,
                width H * hd), mlp_l = post_feedforward_layernorm output (hook_mlp_out), resid_l
                include_embed=True: embed = embed_tokens' output, where feature-circuits hooks
                `model.model.embed_tokens` — Gemma 2: before the hidden_size ** 0.5 multiplication
                (Gemma2Model applies it after the module); Gemma 3: after it (Gemma3TextScaledWordEmbedding
                scales inside the module)
"""

import math

import torch
import torch.nn.functional as F

GEMMA = ("gemma2", "gemma3")

# transformers' config defaults (configuration_*.py) for keys a config.json may leave out
DEFAULTS = {
    "llama": dict(num_key_value_heads=None, head_dim=None, hidden_act="silu", tie_word_embeddings=False, rope_theta=10000.0,
                  sliding_window=None),
    "mistral": dict(num_key_value_heads=8, head_dim=None, hidden_act="silu", tie_word_embeddings=False, rope_theta=10000.0,
                    sliding_window=4096),
    "qwen2": dict(num_key_value_heads=32, head_dim=None, hidden_act="silu", tie_word_embeddings=False, rope_theta=10000.0,
                  sliding_window=4096),
    "qwen3": dict(num_key_value_heads=32, head_dim=128, hidden_act="silu", tie_word_embeddings=False, rope_theta=10000.0,
                  sliding_window=4096),
    "gemma2": dict(num_key_value_heads=4, head_dim=256, hidden_activation="gelu_pytorch_tanh", tie_word_embeddings=True,
                   rope_theta=10000.0, sliding_window=4096, query_pre_attn_scalar=256, attn_logit_softcapping=50.0,
                   final_logit_softcapping=30.0),
    "gemma3": dict(num_key_value_heads=4, head_dim=256, hidden_activation="gelu_pytorch_tanh", tie_word_embeddings=True,
                   rope_theta=1_000_000.0, sliding_window=4096, query_pre_attn_scalar=256, attn_logit_softcapping=None,
                   final_logit_softcapping=None, rope_local_base_freq=10000.0, sliding_window_pattern=6),
}


def text_config(cfg):
    """(architecture, the text model's config with defaults filled in)."""
    arch = cfg["model_type"]
    c = dict(cfg)
    if arch == "gemma3":
        c = dict(cfg.get("text_config") or cfg)
    if arch == "gemma3_text":
        arch = "gemma3"
    full = dict(DEFAULTS[arch])
    full.update({k: v for k, v in c.items() if k in full or v is not None})
    if full.get("num_key_value_heads") is None:
        full["num_key_value_heads"] = full["num_attention_heads"]
    if full.get("head_dim") is None:
        full["head_dim"] = full["hidden_size"] // full["num_attention_heads"]
    full.setdefault("rms_norm_eps", 1e-6)
    return arch, full


def sliding_layers(arch, c):
    L = c["num_hidden_layers"]
    if c.get("layer_types"):
        return [t == "sliding_attention" for t in c["layer_types"]]
    if arch == "gemma2":
        return [bool((i + 1) % 2) for i in range(L)]
    if arch == "gemma3":
        return [bool((i + 1) % c["sliding_window_pattern"]) for i in range(L)]
    if arch == "mistral":
        return [c.get("sliding_window") is not None] * L
    if arch in ("qwen2", "qwen3"):
        return [bool(c.get("use_sliding_window")) and i >= c.get("max_window_layers", 28) for i in range(L)]
    return [False] * L


def act_fn(name):
    if name == "silu":
        return F.silu
    if name in ("gelu_pytorch_tanh", "gelu_new"):
        # transformers' PytorchGELUTanh: F.gelu(approximate="tanh")
        return lambda x: F.gelu(x, approximate="tanh")
    if name == "gelu":
        return F.gelu
    raise ValueError(name)


def rope_neox_cfg(head_dim, base, rope_dict, max_positions):
    """A GPT-NeoX-shaped config whose rope (make_models.rope_init) is this rope on all head_dim dims."""
    rp = dict(rope_dict or {})
    rp.pop("rope_theta", None)
    return {"hidden_size": head_dim, "num_attention_heads": 1, "rotary_pct": 1.0, "rotary_emb_base": base,
            "rope_scaling": rp or None, "max_position_embeddings": max_positions}


def strip_prefix(P):
    """HF names -> names relative to the text model (`layers.0...`, `embed_tokens...`, `norm...`, `lm_head...`)."""
    out = {}
    for k, v in P.items():
        for pre in ("model.language_model.", "language_model.model.", "model."):
            if k.startswith(pre):
                k = k[len(pre):]
                break
        if k.startswith("language_model."):
            k = k[len("language_model."):]
        out[k] = v
    return out


class Decoder:
    """A decoder from config.json and HF tensors.  run(ids, hooks, past) calls hooks[name](x) -> x'
    at every submodule in forward order and returns (logits, present key/values per layer)."""

    def __init__(self, cfg, P, dtype, rope_init, include_embed=False):
        self.arch, self.c = text_config(cfg)
        self.gemma = self.arch in GEMMA
        c = self.c
        self.dtype = dtype
        self.W = {k: v.to(dtype) for k, v in strip_prefix(P).items()}
        self.d, self.H, self.Hkv, self.hd = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
        self.L = c["num_hidden_layers"]
        self.eps = c["rms_norm_eps"]
        self.act = act_fn(c.get("hidden_activation") or c.get("hidden_act"))
        self.sliding = sliding_layers(self.arch, c)
        self.window = c.get("sliding_window")
        if self.arch in ("qwen2", "qwen3") and not c.get("use_sliding_window"):
            self.window = None
        self.scaling = c["query_pre_attn_scalar"] ** -0.5 if self.gemma else self.hd ** -0.5
        self.attn_cap = c.get("attn_logit_softcapping")
        self.final_cap = c.get("final_logit_softcapping")
        mpe = c["max_position_embeddings"]
        rope_dict = c.get("rope_scaling") or (c.get("rope_parameters") if isinstance(c.get("rope_parameters"), dict) else None)
        base = (rope_dict or {}).get("rope_theta", c["rope_theta"])
        self.rope_global = rope_init(rope_neox_cfg(self.hd, base, rope_dict, mpe))
        self.rope_local = rope_init(rope_neox_cfg(self.hd, c["rope_local_base_freq"], None, mpe)) if self.arch == "gemma3" else None
        self.qk_norm = self.arch in ("qwen3", "gemma3")
        self.submodules = ([] if self.gemma and not include_embed else ["embed"]) + [f"{k}_{l}" for l in range(self.L) for k in ("attn", "mlp", "resid")]

    def hook_name(self, sub):
        if sub == "embed":
            return "hook_embed"
        kind, l = sub.split("_")
        if kind == "attn":
            return f"blocks.{l}.attn.hook_z" if self.gemma else f"blocks.{l}.hook_attn_out"
        return f"blocks.{l}.hook_{ {'mlp': 'mlp_out', 'resid': 'resid_post'}[kind] }"

    def width(self, sub):
        return self.H * self.hd if (self.gemma and sub.startswith("attn_")) else self.d

    def norm(self, x, w):
        # Gemma: (x * rsqrt(mean(x^2) + eps)) * (1 + w) in fp32; Llama: w * (x * rsqrt(...)) in fp32 then cast
        xf = x.float() if self.dtype != torch.float64 else x
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        if self.gemma:
            return (y * (1.0 + w.to(y.dtype))).to(x.dtype)
        return w * y.to(x.dtype)

    def lin(self, x, name):
        b = self.W.get(name + ".bias")
        return F.linear(x, self.W[name + ".weight"], b)

    def attention(self, l, x, offset, past):
        pre = f"layers.{l}.self_attn."
        b, s, _ = x.shape
        q = self.lin(x, pre + "q_proj").view(b, s, self.H, self.hd)
        k = self.lin(x, pre + "k_proj").view(b, s, self.Hkv, self.hd)
        v = self.lin(x, pre + "v_proj").view(b, s, self.Hkv, self.hd).transpose(1, 2)
        if self.qk_norm:
            q = self.norm(q, self.W[pre + "q_norm.weight"])
            k = self.norm(k, self.W[pre + "k_norm.weight"])
        q, k = q.transpose(1, 2), k.transpose(1, 2)
        inv, factor = self.rope_local if (self.rope_local is not None and self.sliding[l]) else self.rope_global
        pos = torch.arange(offset, offset + s)
        freqs = (inv[None, :, None].float() @ pos[None, None, :].float()).transpose(1, 2)[0]
        emb = torch.cat((freqs, freqs), -1)
        cos, sin = (emb.cos() * factor).to(self.dtype), (emb.sin() * factor).to(self.dtype)

        def rot(t):
            t1, t2 = t[..., : self.hd // 2], t[..., self.hd // 2:]
            return t * cos + torch.cat((-t2, t1), -1) * sin
        q, k = rot(q), rot(k)
        if past is not None:
            k = torch.cat((past[0], k), 2)
            v = torch.cat((past[1], v), 2)
        present = (k, v)
        rep = self.H // self.Hkv
        kr = k[:, :, None].expand(b, self.Hkv, rep, k.shape[2], self.hd).reshape(b, self.H, k.shape[2], self.hd)
        vr = v[:, :, None].expand(b, self.Hkv, rep, v.shape[2], self.hd).reshape(b, self.H, v.shape[2], self.hd)
        scores = torch.matmul(q, kr.transpose(2, 3)) * self.scaling
        if self.attn_cap is not None:
            scores = torch.tanh(scores / self.attn_cap) * self.attn_cap
        t = kr.shape[2]
        qi = torch.arange(offset, offset + s)[:, None]
        kj = torch.arange(t)[None, :]
        allowed = kj <= qi
        if self.sliding[l] and self.window is not None:
            allowed = allowed & (kj > qi - self.window)
        scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
        w = torch.softmax(scores, dim=-1, dtype=torch.float32 if self.dtype != torch.float64 else torch.float64).to(self.dtype)
        z = torch.matmul(w, vr).transpose(1, 2).reshape(b, s, self.H * self.hd)
        return z, present

    def run(self, ids, hooks=None, past=None, leaf=False):
        """leaf: the (scaled) embedding becomes a leaf with requires_grad (gradients at every submodule)."""
        hooks = hooks or {}
        at = lambda name, x: hooks[name](x) if name in hooks else x  # noqa: E731
        W = self.W
        offset = past[0][0].shape[2] if past else 0
        x = W["embed_tokens.weight"][ids]
        if self.arch == "gemma2":                 # Gemma2Model: embed_tokens(ids) * normalizer
            x = at("embed", x)
            x = x * torch.tensor(self.d ** 0.5, dtype=x.dtype)
        elif self.arch == "gemma3":               # Gemma3TextScaledWordEmbedding: scaled inside the module
            x = at("embed", x * torch.tensor(self.d ** 0.5, dtype=x.dtype))
        if leaf:
            x = x.detach().clone().requires_grad_(True)
        if not self.gemma:
            x = at("embed", x)
        present = []
        for l in range(self.L):
            pre = f"layers.{l}."
            z, kv = self.attention(l, self.norm(x, W[pre + "input_layernorm.weight"]), offset, past[l] if past else None)
            present.append(kv)
            if self.gemma:
                z = at(f"attn_{l}", z)
                h = x + self.norm(self.lin(z, pre + "self_attn.o_proj"), W[pre + "post_attention_layernorm.weight"])
                n = self.norm(h, W[pre + "pre_feedforward_layernorm.weight"])
            else:
                a = at(f"attn_{l}", self.lin(z, pre + "self_attn.o_proj"))
                h = x + a
                n = self.norm(h, W[pre + "post_attention_layernorm.weight"])
            m = self.lin(self.act(self.lin(n, pre + "mlp.gate_proj")) * self.lin(n, pre + "mlp.up_proj"), pre + "mlp.down_proj")
            if self.gemma:
                m = self.norm(m, W[pre + "post_feedforward_layernorm.weight"])
            m = at(f"mlp_{l}", m)
            x = at(f"resid_{l}", h + m)
        x = self.norm(x, W["norm.weight"])
        head = W["embed_tokens.weight"] if self.c.get("tie_word_embeddings") else W["lm_head.weight"]
        logits = F.linear(x, head)
        if self.final_cap is not None:
            logits = torch.tanh(logits / self.final_cap) * self.final_cap
        return logits, present

    def edge_pairs(self):
        """feature-circuits get_circuit's pairs, last layer first: (upstream, downstream, midstream).
        Sequential blocks: attn -> mlp.  Without an embed node (Gemma's default) layer 0 has no upstream resid."""
        pairs = []
        for l in reversed(range(self.L)):
            prev = f"resid_{l - 1}" if l > 0 else ("embed" if "embed" in self.submodules else None)
            pairs.append((f"mlp_{l}", f"resid_{l}", []))
            pairs.append((f"attn_{l}", f"resid_{l}", [f"mlp_{l}"]))
            pairs.append((f"attn_{l}", f"mlp_{l}", []))
            if prev is not None:
                pairs.append((prev, f"mlp_{l}", [f"attn_{l}"]))
                pairs.append((prev, f"attn_{l}", []))
                pairs.append((prev, f"resid_{l}", [f"mlp_{l}", f"attn_{l}"]))
        return pairs


def random_weights(arch_cfg, gen, randn):
    """HF-named random weights (without the `model.` prefix) of realistic scale."""
    arch, c = text_config(arch_cfg)
    gemma = arch in GEMMA
    d, H, Hkv, hd, I, V = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"], c["intermediate_size"], c["vocab_size"]
    gain = (lambda n: randn(gen, (n,), 0.15)) if gemma else (lambda n: randn(gen, (n,), 0.1, 1.0))
    P = {"embed_tokens.weight": randn(gen, (V, d), 0.2 if gemma else 0.5), "norm.weight": gain(d)}
    if not c.get("tie_word_embeddings"):
        P["lm_head.weight"] = randn(gen, (V, d), 0.4)
    bias_qkv = arch == "qwen2" or c.get("attention_bias", False)
    for l in range(c["num_hidden_layers"]):
        pre = f"layers.{l}."
        P[pre + "input_layernorm.weight"] = gain(d)
        P[pre + "post_attention_layernorm.weight"] = gain(d)
        if gemma:
            P[pre + "pre_feedforward_layernorm.weight"] = gain(d)
            P[pre + "post_feedforward_layernorm.weight"] = gain(d)
        for n, rows in (("q_proj", H * hd), ("k_proj", Hkv * hd), ("v_proj", Hkv * hd)):
            P[pre + f"self_attn.{n}.weight"] = randn(gen, (rows, d), 0.35)
            if bias_qkv:
                P[pre + f"self_attn.{n}.bias"] = randn(gen, (rows,), 0.2)
        P[pre + "self_attn.o_proj.weight"] = randn(gen, (d, H * hd), 0.3)
        if c.get("attention_bias", False):
            P[pre + "self_attn.o_proj.bias"] = randn(gen, (d,), 0.1)
        if arch in ("qwen3", "gemma3"):
            P[pre + "self_attn.q_norm.weight"] = gain(hd)
            P[pre + "self_attn.k_norm.weight"] = gain(hd)
        P[pre + "mlp.gate_proj.weight"] = randn(gen, (I, d), 0.3)
        P[pre + "mlp.up_proj.weight"] = randn(gen, (I, d), 0.3)
        P[pre + "mlp.down_proj.weight"] = randn(gen, (d, I), 0.25)
        if c.get("mlp_bias", False):
            P[pre + "mlp.gate_proj.bias"] = randn(gen, (I,), 0.2)
            P[pre + "mlp.up_proj.bias"] = randn(gen, (I,), 0.2)
            P[pre + "mlp.down_proj.bias"] = randn(gen, (d,), 0.1)
    return P


def math_check():
    assert math.isclose(F.gelu(torch.tensor(1.0), approximate="tanh").item(), 0.8411920070648193, rel_tol=1e-6)
