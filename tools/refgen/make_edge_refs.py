#!/usr/bin/env python3
"""Edge / node-effect references for the fixtures/models/ test models (dev tool, not shipped).

For each chosen model folder under ``fixtures/models/<name>/`` (made by make_models.py, read
here, never changed) this writes ``fixtures/models/<name>/edges/`` (a fixture with ``out`` writes
that folder instead: ``gemma2-a/edges-embed`` has Gemma 2's optional ``embed`` submodule and
reuses edges/'s prompts and SAEs, adding only embed's):

    saes/<dir>/...        small random SAEs for embed and attn/mlp/resid of every layer
                          (<dir> = feature-circuits names embed, attn_out_layer{l},
                          mlp_out_layer{l}, resid_out_layer{l}); SAELens "standard"
                          (cfg.json + sae_weights.safetensors, TransformerLens hook names) or
                          dictionary_learning AutoEncoder (ae.pt via torch.save + config.json)
    data.json             contrastive prompt pairs as token ids (+ their text)
    attrib_{sum,none}.json  node effects, method attrib (+ metrics)
    ig_{sum,none}.json    node effects, method ig (10 steps), and every edge of feature-circuits'
                          get_circuit (jvp) with the thresholded circuit
    README.md             what every file holds

The math is feature-circuits' (saprmarks/feature-circuits attribution.py `_pe_attrib`,
`_pe_ig`, `jvp`; circuit.py `get_circuit`) with the intended gradient semantics recorded in
docs/concepts.md (“Parity”), computed by plain PyTorch autograd over a whole-model forward pass in
float64 (the weights as stored, upcast):

* Splice.  A submodule M is "decomposed" by making its SAE state leaves: x_M := dec(f) + r with
  f, r leaf tensors holding enc(x_M) and x_M - dec(enc(x_M)); autograd then gives f.grad and
  r.grad directly (no projection on decoder rows is written by hand).
* ig (steps T = 10): per submodule M and k = 0..T-1, f = (1-k/T) f_clean + (k/T) f_patch (same
  for r) are the leaves; the clean prompt runs with M spliced, sum over the batch of the metric
  is back-propagated; grads are averaged over k.  effect.act = mean f.grad * (f_patch - f_clean),
  effect.err = sum_d mean r.grad * (r_patch - r_clean).
* attrib = the same with T = 1 (one clean forward/backward per submodule; with value- and
  gradient-neutral splices this equals feature-circuits' single pass over all submodules).
* edges U -> D with midstream stop-gradients S (pairs exactly as get_circuit: per layer
  mlp->resid, attn->resid [stop mlp], attn->mlp (sequential models only), prev->mlp [stop attn],
  prev->attn, prev->resid [stop mlp, attn]; prev = resid_{l-1} or embed):
  one clean forward with U spliced (leaves f_U, r_U) and every submodule in S replaced by its
  detached value; for every downstream node (b, s, k) whose per-example ig effect exceeds the
  node threshold, backward of the scalar
      feature k:  leftAct[b,s,k] * enc_D(x_D)[b,s,k],       leftAct = the ig mean f_D.grad
      error:      sum_d leftRes[b,s,d] * (x_D - dec_D(enc_D(x_D)))[b,s,d],  leftRes = ig mean r_D.grad
  to the leaves (full autograd through the model between U and D) gives the edge row
  [f_U.grad * Δf_U, sum_d r_U.grad * Δr_U] over all upstream positions.  The upstream error
  gets its true gradient (docs/concepts.md, “Parity”: the intended semantics, not nnsight-0.3's zeroed one).
* resid_last -> y is the ig node effect of the last resid.
* Aggregation: sum -- nodes summed over positions, mean over examples; edges summed over both
  position axes, mean over examples.  none -- positions kept, mean over examples.

Everything is checked before it is written: the forward against the model folder's ref.json
logits, and a sample of edge entries of every pair against central finite differences (with
the midstream submodules held at their clean values).  Thresholds are moved (within a few %)
to the widest gap so no value sits near them; the margins are recorded.

    python3 tools/refgen/make_edge_refs.py [--only NAME ...]

Needs Debian's python3-torch (re-runs itself with /usr/bin/python3 when a pyenv python
shadows it); `transformers`/`safetensors` are not used.  Deterministic (fixed seeds, one thread).
"""

import os
import sys

# The sibling script make_models.py owns the safetensors reader and writer, r7 and the JSON
# writer; importing it also re-runs this script with Debian's /usr/bin/python3 when the python3
# in use has no PyTorch, and sets torch to one thread.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_models  # noqa: E402
from make_models import REPO, dump_json, r7, write_safetensors  # noqa: E402

import argparse  # noqa: E402
import collections  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

DT = torch.float64

MODELS_DIR = os.path.join(REPO, "fixtures", "models")
FORMAT = "sfc.refgen.edges/v1"

def fixture_key(spec):
    """`name`, or `name/out` for a fixture written to another folder than edges/ (what --only takes)."""
    return f"{spec['name']}/{spec['out']}" if spec.get("out") else spec["name"]


def decoder_fixture(name, seed, d_sae, sae_format, n_examples, seq_len, node_threshold, edge_threshold):
    """A decoder fixture: ig with 10 steps, exact node effects too."""
    return {"name": name, "seed": seed, "d_sae": d_sae, "sae_format": sae_format, "n_examples": n_examples,
            "seq_len": seq_len, "steps": 10, "node_threshold": node_threshold, "edge_threshold": edge_threshold,
            "exact": True}


# Fixtures: which model folder, SAE width and on-disk format, prompts, thresholds (targets;
# the written thresholds are moved to the widest nearby gap, see pick_threshold).
FIXTURES = [
    {
        "name": "neox-seq-r100",      # GPT-NeoX, sequential residual, rotary_pct 1.0, 3 layers, d 48
        "seed": 2101,
        "d_sae": 40,
        "sae_format": "saelens",
        "n_examples": 5,
        "seq_len": 6,
        "steps": 10,
        "node_threshold": 0.02,
        "edge_threshold": 0.004,
    },
    {
        "name": "gpt2-a",             # GPT-2 (sequential), learned positions, tied unembedding, 2 layers, d 32
        "seed": 2104,
        "d_sae": 40,
        "sae_format": "dictionary_learning",
        "n_examples": 5,
        "seq_len": 6,
        "steps": 10,
        "node_threshold": 0.05,
        "edge_threshold": 0.01,
    },
    {
        "name": "neox-par-r50-bf16",  # GPT-NeoX, parallel residual, rotary_pct 0.5 base 500, BF16, padded vocab
        "seed": 2103,
        "d_sae": 32,
        "sae_format": "saelens",
        "n_examples": 4,
        "seq_len": 5,
        "steps": 10,
        "node_threshold": 0.05,
        "edge_threshold": 0.01,
    },
    # Gemma 2/3 and the Llama family (decoders.py); exact node effects too
    *[decoder_fixture(*row) for row in [
        # name, seed, d_sae, SAE format, examples, tokens, node threshold, edge threshold
        ("gemma2-a", 2201, 40, "saelens", 5, 6, 0.02, 0.004),     # attn_l = o_proj input (48 wide), no embed, soft-caps, window 4
        ("gemma3-a", 2202, 40, "saelens", 4, 6, 0.02, 0.004),     # attn_l 64 wide, q/k norms, MQA, local/global rope, window 3
        ("llama-a", 2203, 40, "dictionary_learning", 5, 6, 0.05, 0.01),   # llama3 rope, GQA, MLP biases, untied head
        ("mistral-bf16", 2204, 32, "saelens", 4, 6, 0.05, 0.01),  # BF16, window 4 on every layer, MQA, head_dim 16
        ("qwen2-a", 2205, 32, "dictionary_learning", 4, 5, 0.05, 0.01),   # q/k/v biases, tied head
        ("qwen3-a", 2206, 32, "saelens", 4, 5, 0.05, 0.01),       # per-head q/k norms, head_dim 16
    ]],
    # Gemma 2 with `embed` as a submodule (feature-circuits' include_embed=True): embed_tokens'
    # output, before the √d scale. Prompts and the other SAEs are edges/'s (so their kink margins
    # hold); only the embed SAE is new. ig sum only, fewer stored entries: the files stay small.
    dict(decoder_fixture("gemma2-a", 2211, 40, "saelens", 5, 6, 0.02, 0.004), out="edges-embed", base="edges",
         include_embed=True, exact=False, ig_aggregations=("sum",), max_entries=2500),
]

# Edge entries stored per file are those with |w| > floor, the floor chosen (in a gap of the
# values) so that about MAX_ENTRIES are kept and the files stay small; counts and sums cover all.
MAX_ENTRIES = 6000

README = """# Edge and node-effect references for `{name}`

Written by `tools/refgen/make_edge_refs.py` (do not edit by hand; re-run the script). An
independent plain-PyTorch reference (float64, full-model autograd, one backward pass per
downstream node) of feature-circuits' node effects (`attribution.py`) and edges (`circuit.py`
`get_circuit` / `jvp`) on the model in the parent folder, with the intended gradient semantics
of docs/concepts.md (“Parity”). Checked by `test/src/edges-parity-models.test.ts` on every backend.

Model: {model_desc}. {pairs_desc}

## Files

| file | contents |
| --- | --- |
| `saes/<dir>/` | one random ReLU SAE per submodule, d_sae {d_sae}, {sae_desc}. `<dir>` = `embed`, `attn_out_layer{{l}}`, `mlp_out_layer{{l}}`, `resid_out_layer{{l}}` (feature-circuits names). Decoder rows have unit norm; each feature is active on ~30% of random-text activations; biases were nudged so no pre-activation of the prompts lies within 2e-3·std of the ReLU kink (`sae_min_relative_distance_to_relu_kink`). Math: `f = relu((x − b_dec)·W_enc + b_enc)`, `x̂ = f·W_dec + b_dec`. |
| `data.json` | {n_examples} prompt pairs of {seq_len} tokens as token ids (`clean_ids`, `patch_ids` [B][S], `clean_answer`, `patch_answer` [B]) and their text; the patch prompt differs at one position (1 … S−1). All pairs run as one batch. `model_safetensors_sha256`: the weights these references belong to (re-run the script when make_models.py rewrites the model). |
| `attrib_{{sum,none}}.json` | node effects, method attrib |
| `ig_{{sum,none}}.json` | node effects, method ig (10 steps), edges and circuit of discovery |
| `exact_{{sum,none}}.json` | node effects, method exact (decoder fixtures): per `(b, s, i)` with Δf ≠ 0 the metric change when only that feature takes its patch value (`x := x_clean + Δf_i·W_dec[i]` at `s`), per `(b, s)` the change when the error takes its patch value; aggregated like the others |

## Fields

| field | meaning |
| --- | --- |
| `submodules`, `d_sae`, `error_node_index` | forward order; node index `d_sae` is the SAE error node everywhere |
| `metric.clean[b]`, `metric.patch[b]`, `*_mean` | `logit[last, patch_answer] − logit[last, clean_answer]` |
| `total_effect.per_example`, `.mean` | `m(patch) − m(clean)` |
| `nodes[sub].act`, `.err` | aggregated node effects: sum → `act [F]`, `err` number (summed over positions, mean over examples); none → `act [S][F]`, `err [S]` (mean over examples) |
| `node_threshold` | ig per-example, per-position effects above it select the downstream nodes (edge rows); aggregated effects above it are the circuit's nodes. Chosen in a gap: `node_threshold_margin` = distance to the nearest per-example or aggregated abs(effect) |
| `downstream_nodes_above_threshold[sub]` | how many per-example `(b, s, k)` rows were computed for `sub` as downstream |
| `edges[up][down]` | `n_rows` (distinct downstream nodes with a row: `k` for sum, `(s, k)` for none), `nnz` (exact nonzero entries), `sum`, `abs_sum`, `max_abs` over all entries; `entries` = those with abs(w) > `edges_entry_floor`: sum → `[k_down, j_up, w]`, none → `[s_down, k_down, s_up, j_up, w]`. Weights: sum over both position axes (sum) or none, mean over examples |
| `edges[resid_last].y.dense` | `resid_last → y` = the ig node effects of the last resid, `[F+1]` or `[S][F+1]` |
| `edge_threshold`, `edge_threshold_margin` | circuit edges keep abs(w) > edge_threshold; the margin is the distance to the nearest candidate weight |
| `circuit.nodes[sub]` | kept nodes `[k, effect]` (sum) or `[s, k, effect]` (none) |
| `circuit.edges` | `[up, up_idx, down, down_idx, w]` between kept nodes with abs(w) > edge_threshold, incl. `resid_last → y` |
| `fd_check` | edge entries re-derived by central finite differences in float64 (max relative error) |

## Definitions (what the reference computes)

- Splice: `x_M := dec(f) + r` with `f`, `r` leaf tensors (the SAE state); autograd gives ∂m/∂f and ∂m/∂r.
- ig: per submodule, `f, r` interpolated `(1 − k/10)·clean + (k/10)·patch`, k = 0 … 9, gradients of
  Σ_b m averaged; `act = mean ∂m/∂f ⊙ Δf`, `err = Σ_d mean ∂m/∂r ⊙ Δr`. attrib: the same with one step (k = 0).
- edges U → D (stop-gradients at the midstream submodules: their outputs are replaced by detached
  values): one clean forward with U spliced; for each downstream node the scalar
  `(∂m/∂f_D)[b,s,k]·f_D[b,s,k]` (feature) or `Σ_d (∂m/∂r_D)[b,s]·r_D[b,s]` (error), with ig gradients,
  is back-propagated through the model to U's leaves; row = `[∂/∂f_U ⊙ Δf_U, Σ_d ∂/∂r_U ⊙ Δr_U]`
  over every upstream position. Upstream errors get their true gradient (not the zero of
  nnsight 0.3's `jvp`).
- Pairs per layer l (get_circuit): `mlp_l→resid_l`, `attn_l→resid_l` (stop mlp_l),
  `attn_l→mlp_l` (sequential models only), `prev→mlp_l` (stop attn_l), `prev→attn_l`,
  `prev→resid_l` (stop mlp_l, attn_l); prev = `resid_{{l−1}}` or `embed` (none at layer 0 on a
  model without an `embed` node: Gemma by default). The RMSNorm decoders are sequential, so they have `attn_l→mlp_l`.

Tolerances used by the test: node effects and edges per submodule/pair max|Δ|/max|ref| ≤ 1e-3,
each stored entry |a − r| ≤ 1e-3·|r| + 1e-5, counts exact, metrics 1e-5 relative.
"""

MODEL_DESC = {
    "neox-seq-r100": "GPT-NeoX, sequential residual (`use_parallel_residual` false), rotary_pct 1.0, 3 layers, d 48, 6 heads, F16 weights (computed in float64 from the stored values); `embed` = `embed_in` output",
    "neox-par-r50-bf16": "GPT-NeoX, parallel residual, rotary_pct 0.5 with rotary_emb_base 500, 2 layers, d 32, 2 heads, BF16 weights (computed in float64 from the stored values), config vocab 64 > 56 tokenizer entries; `embed` = `embed_in` output",
    "gpt2-a": "GPT-2, 2 layers, d 32, 4 heads, learned positions, tied unembedding; `embed` = wte + wpe (`blocks.0.hook_resid_pre`)",
    "gemma2-a": "Gemma 2, 3 layers, d 32, 4 heads of 12 (2 kv heads), query_pre_attn_scalar 16, attention soft-cap 2, final soft-cap 4, sliding window 4 on layers 0 and 2, tied unembedding; no `embed` submodule (feature-circuits' include_embed=False); `attn_l` = o_proj's input, 48 wide (`blocks.l.attn.hook_z`); `mlp_l` = post_feedforward_layernorm output",
    "gemma3-a": "Gemma 3 (gemma3_text), 3 layers, d 32, 4 heads of 16 (1 kv head), q/k norms, local layers 0 and 1 (window 3, rope base 100), global layer 2 (rope 1e6, linear ×4); no `embed` submodule; `attn_l` = o_proj's input, 64 wide (`blocks.l.attn.hook_z`)",
    "llama-a": "Llama, 2 layers, d 32, 4 heads of 16 (2 kv heads), llama3 rope scaling, SwiGLU, untied head; `embed` = embed_tokens output (`hook_embed`)",
    "mistral-bf16": "Mistral, 2 layers, d 32, 4 heads of 16 (1 kv head), sliding window 4 on every layer, BF16 weights (computed in float64 from the stored values); `embed` = embed_tokens output",
    "qwen2-a": "Qwen 2, 2 layers, d 32, 4 heads of 8 (2 kv heads), q/k/v biases, tied head; `embed` = embed_tokens output",
    "gemma2-a/edges-embed": "the Gemma 2 of `edges/` with `embed` as a submodule (feature-circuits' include_embed=True): `embed` = the output of `model.embed_tokens`, which Gemma2Model then multiplies by √hidden_size, so it is the unscaled embedding (SAELens' `hook_embed` folder name; Gemma Scope's `embedding/` SAE sits there). Prompts (`data.json`) and the SAEs of every other submodule are `../edges/`'s (`saes/` here holds only `embed`); pairs as `../edges/` plus embed → attn_0, mlp_0, resid_0. ig references for aggregation sum only, no exact references",
    "qwen3-a": "Qwen 3, 2 layers, d 32, 4 heads of 16 (2 kv heads), per-head q/k RMSNorm, untied head; `embed` = embed_tokens output",
}
SAE_DESC = {
    "saelens": "SAELens standard format (`cfg.json` + `sae_weights.safetensors`: W_enc [d,F], b_enc, W_dec [F,d], b_dec; apply_b_dec_to_input; `hook_name` = TransformerLens hook)",
    "dictionary_learning": "dictionary_learning AutoEncoder (`ae.pt` = torch.save of the state_dict: bias [d], encoder.weight [F,d], encoder.bias [F], decoder.weight [d,F]; plus `config.json`)",
}


# --------------------------------------------------------------------------------------------
# safetensors (make_models.py's reader and writer: Debian has no python3-safetensors)
# --------------------------------------------------------------------------------------------

def read_safetensors(path):
    """name -> float64 tensor (F32/F16/BF16 upcast exactly); bool buffers are skipped."""
    return {k: v.to(DT) for k, v in make_models.read_safetensors(path).items() if v.is_floating_point()}


def write_safetensors_f32(path, tensors):
    """F32 tensors in HF's layout (sorted by name, header padded to 8 bytes)."""
    write_safetensors(path, {name: (t, "F32") for name, t in tensors.items()})


# --------------------------------------------------------------------------------------------
# The models (Hugging Face semantics), with a hook at every submodule
# --------------------------------------------------------------------------------------------

class StopForward(Exception):
    """Raised by a hook that has what it needs (the rest of the forward is not computed)."""


class Hooked:
    """What the reference needs of a model besides run(ids, hooks): every submodule's clean value,
    and each submodule's width (an SAE's d_in)."""

    def width(self, sub):
        return self.d

    def activations(self, ids):
        acts = {}

        def grab(name):
            def f(x):
                acts[name] = x.detach()
                return x
            return f
        with torch.no_grad():
            logits = self.run(ids, {n: grab(n) for n in self.submodules})
        return logits, acts


class DecoderModel(Hooked):
    """Gemma 2/3 or a Llama-family model from a HF folder (make_models' decoders.py, float64).
    Gemma: attn_l is o_proj's input (width heads x head_dim) and there is no embed submodule."""

    def __init__(self, folder, include_embed=False):
        with open(os.path.join(folder, "config.json")) as f:
            self.cfg = json.load(f)
        W = read_safetensors(os.path.join(folder, "model.safetensors"))
        self.m = make_models.decoders.Decoder(self.cfg, W, DT, make_models.rope_init, include_embed=include_embed)
        self.kind, self.d, self.L, self.parallel = self.m.arch, self.m.d, self.m.L, False
        self.submodules = self.m.submodules

    def width(self, sub):
        return self.m.width(sub)

    def hook_name(self, sub):
        return self.m.hook_name(sub)

    def run(self, ids, hooks=None):
        return self.m.run(ids, hooks)[0]

    def edge_pairs(self):
        return self.m.edge_pairs()


def load_model(folder, include_embed=False):
    with open(os.path.join(folder, "config.json")) as f:
        kind = json.load(f)["model_type"]
    return Transformer(folder) if kind in ("gpt_neox", "gpt2") else DecoderModel(folder, include_embed)


class Transformer(Hooked):
    """GPT-NeoX or GPT-2 from a HF folder.  run(ids, hooks) calls hooks[name](x) -> x' at each
    submodule in forward order (embed, attn_l, mlp_l, resid_l) and returns the logits."""

    def __init__(self, folder):
        with open(os.path.join(folder, "config.json")) as f:
            self.cfg = json.load(f)
        W = read_safetensors(os.path.join(folder, "model.safetensors"))
        c = self.cfg
        self.kind = c["model_type"]
        if self.kind == "gpt_neox":
            self.d, self.H, self.L = c["hidden_size"], c["num_attention_heads"], c["num_hidden_layers"]
            self.eps = c["layer_norm_eps"]
            self.parallel = c.get("use_parallel_residual", True)
            self.W = {k[len("gpt_neox."):] if k.startswith("gpt_neox.") else k: v for k, v in W.items()}
            assert c.get("hidden_act", "gelu") == "gelu"
        elif self.kind == "gpt2":
            self.d, self.H, self.L = c["n_embd"], c["n_head"], c["n_layer"]
            self.eps = c.get("layer_norm_epsilon", 1e-5)
            self.parallel = False
            self.W = {k[len("transformer."):] if k.startswith("transformer.") else k: v for k, v in W.items()}
            assert c.get("activation_function", "gelu_new") == "gelu_new"
            assert not c.get("scale_attn_by_inverse_layer_idx", False) and c.get("scale_attn_weights", True)
        else:
            raise ValueError(self.kind)
        self.hd = self.d // self.H
        self.submodules = ["embed"] + [f"{k}_{l}" for l in range(self.L) for k in ("attn", "mlp", "resid")]

    def hook_name(self, sub):
        if sub == "embed":
            return "hook_embed" if self.kind == "gpt_neox" else "blocks.0.hook_resid_pre"
        kind, l = sub.split("_")
        return f"blocks.{l}.hook_{ {'attn': 'attn_out', 'mlp': 'mlp_out', 'resid': 'resid_post'}[kind] }"

    def _ln(self, x, w, b):
        mu = x.mean(-1, keepdim=True)
        var = ((x - mu) ** 2).mean(-1, keepdim=True)
        return (x - mu) / torch.sqrt(var + self.eps) * w + b

    def _attend(self, q, k, v):
        # q, k, v: [b, H, s, hd]; causal softmax attention
        s = q.shape[2]
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.hd)
        mask = torch.ones(s, s, dtype=torch.bool).tril()
        scores = scores.masked_fill(~mask, float("-inf"))
        o = torch.softmax(scores, -1) @ v
        return o.transpose(1, 2).reshape(q.shape[0], s, self.d)

    def _neox_attn(self, l, x):
        W, pre = self.W, f"layers.{l}."
        b, s, _ = x.shape
        h = self._ln(x, W[pre + "input_layernorm.weight"], W[pre + "input_layernorm.bias"])
        qkv = h @ W[pre + "attention.query_key_value.weight"].T + W[pre + "attention.query_key_value.bias"]
        qkv = qkv.reshape(b, s, self.H, 3, self.hd).permute(3, 0, 2, 1, 4)  # per head rows q | k | v
        q, k, v = qkv[0], qkv[1], qkv[2]
        rot = int(self.hd * self.cfg.get("rotary_pct", 0.25))
        if rot > 0:
            base = self.cfg.get("rotary_emb_base", 10000)
            inv = 1.0 / (base ** (torch.arange(0, rot, 2, dtype=DT) / rot))
            ang = torch.arange(s, dtype=DT)[:, None] * inv[None, :]
            ang = torch.cat([ang, ang], -1)
            cos, sin = torch.cos(ang), torch.sin(ang)

            def rope(t):
                tr, tp = t[..., :rot], t[..., rot:]
                half = rot // 2
                rotated = torch.cat([-tr[..., half:], tr[..., :half]], -1)
                return torch.cat([tr * cos + rotated * sin, tp], -1)
            q, k = rope(q), rope(k)
        o = self._attend(q, k, v)
        return o @ W[pre + "attention.dense.weight"].T + W[pre + "attention.dense.bias"]

    def _neox_mlp(self, l, x):
        W, pre = self.W, f"layers.{l}."
        h = self._ln(x, W[pre + "post_attention_layernorm.weight"], W[pre + "post_attention_layernorm.bias"])
        z = h @ W[pre + "mlp.dense_h_to_4h.weight"].T + W[pre + "mlp.dense_h_to_4h.bias"]
        z = 0.5 * z * (1.0 + torch.erf(z / math.sqrt(2.0)))
        return z @ W[pre + "mlp.dense_4h_to_h.weight"].T + W[pre + "mlp.dense_4h_to_h.bias"]

    def _gpt2_attn(self, l, x):
        W, pre = self.W, f"h.{l}."
        b, s, _ = x.shape
        h = self._ln(x, W[pre + "ln_1.weight"], W[pre + "ln_1.bias"])
        qkv = h @ W[pre + "attn.c_attn.weight"] + W[pre + "attn.c_attn.bias"]        # Conv1D [in, out]
        q, k, v = (t.reshape(b, s, self.H, self.hd).transpose(1, 2) for t in qkv.split(self.d, -1))
        o = self._attend(q, k, v)
        return o @ W[pre + "attn.c_proj.weight"] + W[pre + "attn.c_proj.bias"]

    def _gpt2_mlp(self, l, x):
        W, pre = self.W, f"h.{l}."
        h = self._ln(x, W[pre + "ln_2.weight"], W[pre + "ln_2.bias"])
        z = h @ W[pre + "mlp.c_fc.weight"] + W[pre + "mlp.c_fc.bias"]
        z = 0.5 * z * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (z + 0.044715 * z ** 3)))
        return z @ W[pre + "mlp.c_proj.weight"] + W[pre + "mlp.c_proj.bias"]

    def run(self, ids, hooks=None):
        hooks = hooks or {}
        at = lambda name, x: hooks[name](x) if name in hooks else x  # noqa: E731
        W = self.W
        neox = self.kind == "gpt_neox"
        if neox:
            x = W["embed_in.weight"][ids]
        else:
            x = W["wte.weight"][ids] + W["wpe.weight"][torch.arange(ids.shape[1])][None]
        x = at("embed", x)
        for l in range(self.L):
            a = at(f"attn_{l}", self._neox_attn(l, x) if neox else self._gpt2_attn(l, x))
            if self.parallel:
                m = at(f"mlp_{l}", self._neox_mlp(l, x))
                x = at(f"resid_{l}", x + a + m)
            else:
                mid = x + a
                m = at(f"mlp_{l}", self._neox_mlp(l, mid) if neox else self._gpt2_mlp(l, mid))
                x = at(f"resid_{l}", mid + m)
        if neox:
            x = self._ln(x, W["final_layer_norm.weight"], W["final_layer_norm.bias"])
            return x @ W["embed_out.weight"].T
        x = self._ln(x, W["ln_f.weight"], W["ln_f.bias"])
        return x @ W["wte.weight"].T

    def edge_pairs(self):
        """feature-circuits get_circuit's pairs, last layer first: (upstream, downstream, midstream)."""
        pairs = []
        for l in reversed(range(self.L)):
            prev = f"resid_{l - 1}" if l > 0 else "embed"
            pairs.append((f"mlp_{l}", f"resid_{l}", []))
            pairs.append((f"attn_{l}", f"resid_{l}", [f"mlp_{l}"]))
            if not self.parallel:
                pairs.append((f"attn_{l}", f"mlp_{l}", []))
            pairs.append((prev, f"mlp_{l}", [f"attn_{l}"]))
            pairs.append((prev, f"attn_{l}", []))
            pairs.append((prev, f"resid_{l}", [f"mlp_{l}", f"attn_{l}"]))
        return pairs


# --------------------------------------------------------------------------------------------
# SAEs
# --------------------------------------------------------------------------------------------

FC_DIRS = {"attn": "attn_out_layer{}", "mlp": "mlp_out_layer{}", "resid": "resid_out_layer{}"}


def fc_dir(sub):
    if sub == "embed":
        return "embed"
    kind, l = sub.split("_")
    return FC_DIRS[kind].format(l)


class SAE:
    """ReLU SAE, dictionary_learning math: f = relu((x - b_dec) W_enc + b_enc), x̂ = f W_dec + b_dec."""

    def __init__(self, W_enc, b_enc, W_dec, b_dec):
        self.W_enc, self.b_enc, self.W_dec, self.b_dec = (t.to(DT) for t in (W_enc, b_enc, W_dec, b_dec))
        self.F = self.W_dec.shape[0]

    def pre(self, x):
        return (x - self.b_dec) @ self.W_enc + self.b_enc

    def encode(self, x):
        return torch.relu(self.pre(x))

    def decode(self, f):
        return f @ self.W_dec + self.b_dec


def random_sae(gen, d, Fn, calib):
    """Random SAE calibrated on activations `calib` [n, d]: unit-norm decoder rows, encoder =
    decoder + noise scaled to the activations, b_enc so each feature is active on ~30% of them."""
    W_dec = torch.randn(Fn, d, generator=gen, dtype=DT)
    W_dec = W_dec / W_dec.norm(dim=1, keepdim=True)
    scale = calib.std(0).mean().clamp_min(1e-3)
    b_dec = (calib.mean(0) + 0.05 * scale * torch.randn(d, generator=gen, dtype=DT))
    W_enc = (W_dec.T + 0.5 * torch.randn(d, Fn, generator=gen, dtype=DT) / math.sqrt(d)) / scale
    pre = (calib - b_dec) @ W_enc
    b_enc = -torch.quantile(pre, 0.7, dim=0)
    # round to the stored precision so the reference uses exactly what is on disk
    return [t.to(torch.float32) for t in (W_enc, b_enc, W_dec, b_dec)]


def write_saelens(folder, model_name, hook, d, Fn, W_enc, b_enc, W_dec, b_dec):
    os.makedirs(folder, exist_ok=True)
    write_safetensors_f32(os.path.join(folder, "sae_weights.safetensors"),
                          {"W_enc": W_enc, "b_enc": b_enc, "W_dec": W_dec, "b_dec": b_dec})
    cfg = {
        "architecture": "standard", "d_in": d, "d_sae": Fn, "dtype": "float32", "device": "cpu",
        "apply_b_dec_to_input": True, "normalize_activations": "none", "reshape_activations": "none",
        "metadata": {"sae_lens_version": "6.0.0", "sae_lens_training_version": "6.0.0", "model_name": model_name,
                     "hook_name": hook, "hook_head_index": None, "prepend_bos": False, "context_size": None,
                     "dataset_path": None, "neuronpedia_id": None},
    }
    with open(os.path.join(folder, "cfg.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")


def read_saelens(folder):
    W = read_safetensors(os.path.join(folder, "sae_weights.safetensors"))
    return SAE(W["W_enc"], W["b_enc"], W["W_dec"], W["b_dec"])


class DictionaryLearningAutoEncoder(torch.nn.Module):
    """The parameter layout of dictionary_learning's AutoEncoder (what its ae.pt state_dict holds)."""

    def __init__(self, d, Fn):
        super().__init__()
        self.activation_dim, self.dict_size = d, Fn
        self.bias = torch.nn.Parameter(torch.zeros(d))
        self.encoder = torch.nn.Linear(d, Fn, bias=True)
        self.decoder = torch.nn.Linear(Fn, d, bias=False)


def write_dictionary_learning(folder, model_name, sub, d, Fn, seed, W_enc, b_enc, W_dec, b_dec):
    os.makedirs(folder, exist_ok=True)
    ae = DictionaryLearningAutoEncoder(d, Fn)
    with torch.no_grad():
        ae.bias.copy_(b_dec)
        ae.encoder.weight.copy_(W_enc.T)   # [F, d]
        ae.encoder.bias.copy_(b_enc)
        ae.decoder.weight.copy_(W_dec.T)   # [d, F]
    torch.save(ae.state_dict(), os.path.join(folder, "ae.pt"))
    cfg = {"trainer": {"dict_class": "AutoEncoder", "trainer_class": "StandardTrainer", "activation_dim": d,
                       "dict_size": Fn, "layer": None if sub == "embed" else int(sub.split("_")[1]),
                       "lm_name": model_name, "submodule_name": sub, "seed": seed,
                       "note": "random activation-calibrated fixture SAE, not trained"}}
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f, indent=4)
        f.write("\n")


def read_dictionary_learning(folder):
    sd = torch.load(os.path.join(folder, "ae.pt"), map_location="cpu")
    return SAE(sd["encoder.weight"].T, sd["encoder.bias"], sd["decoder.weight"].T, sd["bias"])


# --------------------------------------------------------------------------------------------
# Attribution (ig / attrib) and edges
# --------------------------------------------------------------------------------------------

def metric_fn(logits, ca, pa):
    """feature-circuits' discovery metric: logit[last, patch_answer] - logit[last, clean_answer]."""
    last = logits[:, -1, :]
    r = torch.arange(last.shape[0])
    return last[r, pa] - last[r, ca]


def states(saes, acts):
    out = {}
    for n, x in acts.items():
        f = saes[n].encode(x)
        out[n] = (f, x - saes[n].decode(f))
    return out


def ig_grads(model, saes, ids, ca, pa, sub, clean, patch, steps):
    """Mean over k of (f.grad, r.grad) with x_sub := dec(f_k) + r_k, f_k, r_k interpolated leaves."""
    (fc, rc), (fp, rp) = clean[sub], patch[sub]
    gf, gr = torch.zeros_like(fc), torch.zeros_like(rc)
    for k in range(steps):
        a = k / steps
        f = ((1 - a) * fc + a * fp).requires_grad_(True)
        r = ((1 - a) * rc + a * rp).requires_grad_(True)
        logits = model.run(ids, {sub: lambda x, f=f, r=r: saes[sub].decode(f) + r})
        metric_fn(logits, ca, pa).sum().backward()
        gf += f.grad
        gr += r.grad
    return gf / steps, gr / steps


def node_effects(model, saes, ids, ca, pa, clean, patch, steps):
    """{sub: (act [B,S,F], err [B,S])} per example, and the grads {sub: (gf, gr)}."""
    effects, grads = {}, {}
    for sub in model.submodules:
        gf, gr = ig_grads(model, saes, ids, ca, pa, sub, clean, patch, steps)
        df = patch[sub][0] - clean[sub][0]
        dr = patch[sub][1] - clean[sub][1]
        effects[sub] = (gf * df, (gr * dr).sum(-1))
        grads[sub] = (gf, gr)
    return effects, grads


def exact_effects(model, saes, ids, ca, pa, clean, patch, m_clean, chunk=256):
    """{sub: (act [B,S,F], err [B,S])}: for each (b, s, i) with df != 0 the metric change when only
    that feature takes its patch value (x := x_clean + df_i W_dec[i] at position s), for each (b, s)
    the change when the error takes its patch value (x := x_clean + dr at s); zero elsewhere."""
    out = {}
    for sub in model.submodules:
        (fc, rc), (fp, rp) = clean[sub], patch[sub]
        df, dr = fp - fc, rp - rc
        xc = saes[sub].decode(fc) + rc
        B, S, Fn = df.shape
        act, err = torch.zeros_like(df), torch.zeros(B, S, dtype=DT)
        jobs = [("f", b, s, i) for b, s, i in df.nonzero().tolist()] + [("r", b, s, None) for b in range(B) for s in range(S)
                                                                        if dr[b, s].abs().max() > 0]
        for c0 in range(0, len(jobs), chunk):
            part = jobs[c0:c0 + chunk]
            rows = torch.tensor([b for _, b, _, _ in part])
            x = xc[rows].clone()
            for n, (kind, b, s, i) in enumerate(part):
                x[n, s] += df[b, s, i] * saes[sub].W_dec[i] if kind == "f" else dr[b, s]
            with torch.no_grad():
                m = metric_fn(model.run(ids[rows], {sub: lambda _x, x=x: x}), ca[rows], pa[rows]) - m_clean[rows]
            for n, (kind, b, s, i) in enumerate(part):
                if kind == "f":
                    act[b, s, i] = m[n]
                else:
                    err[b, s] = m[n]
        out[sub] = (act, err)
    return out


def selected_nodes(effect, threshold):
    """(b, s, k) with |effect| > threshold; k = F is the error node (feature-circuits' features_by_submod)."""
    act, err = effect
    full = torch.cat([act, err[..., None]], -1)
    return [tuple(int(v) for v in i) for i in (full.abs() > threshold).nonzero()]


def value_at(model, ids, hooks, down):
    """The value submodule `down` outputs (before any hook of its own) when the model runs with
    `hooks`; the rest of the forward is not computed."""
    captured = {}

    def at_down(x):
        captured["x"] = x
        raise StopForward()
    try:
        model.run(ids, {**hooks, down: at_down})
    except StopForward:
        pass
    return captured["x"]


def pair_rows(model, saes, ids, up, down, mids, clean, patch, grads, nodes):
    """Edge rows of one pair: {(b, s_d, k): tensor [S_u, F_U + 1]} (one full backward per node)."""
    fU0, rU0 = clean[up]
    dfU, drU = patch[up][0] - fU0, patch[up][1] - rU0
    fU = fU0.clone().requires_grad_(True)
    rU = rU0.clone().requires_grad_(True)
    hooks = {up: lambda x: saes[up].decode(fU) + rU}
    for m in mids:
        hooks[m] = lambda x: x.detach()   # stop-gradient: same value, no path through m
    xD = value_at(model, ids, hooks, down)
    sD = saes[down]
    fD = sD.encode(xD)
    rD = xD - sD.decode(fD)
    gfD, grD = grads[down]
    FD = sD.F
    rows = {}
    for (b, s, k) in nodes:
        scalar = gfD[b, s, k] * fD[b, s, k] if k < FD else (grD[b, s] * rD[b, s]).sum()
        gf, gr = torch.autograd.grad(scalar, (fU, rU), retain_graph=True, allow_unused=True)
        gf = torch.zeros_like(fU0) if gf is None else gf
        gr = torch.zeros_like(rU0) if gr is None else gr
        rows[(b, s, k)] = torch.cat([gf[b] * dfU[b], (gr[b] * drU[b]).sum(-1, keepdim=True)], -1).detach()
    return rows


def fd_check(model, saes, ids, up, down, mids, clean, patch, grads, rows, clean_acts, n_check, gen):
    """Central finite differences of the largest entries of a pair (midstream held at clean values)."""
    fU0, rU0 = clean[up]
    sD = saes[down]
    FD, FU = sD.F, saes[up].F
    gfD, grD = grads[down]
    cands = []
    for (b, s, k), row in rows.items():
        for su in range(row.shape[0]):
            for j in range(FU + 1):
                if row[su, j] != 0:
                    cands.append((abs(float(row[su, j])), b, s, k, su, j))
    cands.sort(reverse=True)
    picks = cands[:n_check // 2] + [cands[int(i)] for i in torch.randint(len(cands), (n_check - n_check // 2,), generator=gen)] if cands else []
    worst = 0.0
    for (_, b, s, k, su, j) in picks:
        def value(eps):
            f, r = fU0.clone(), rU0.clone()
            if j < FU:
                f[b, su, j] += eps
            else:
                r[b, su] += eps * (patch[up][1][b, su] - rU0[b, su])
            hooks = {up: lambda x: saes[up].decode(f) + r}
            for m in mids:
                hooks[m] = lambda x, m=m: clean_acts[m]
            with torch.no_grad():
                xD = value_at(model, ids, hooks, down)[b, s]
            if k < FD:
                return float(gfD[b, s, k] * sD.encode(xD)[k])
            return float((grD[b, s] * (xD - sD.decode(sD.encode(xD)))).sum())
        eps = 1e-5
        deriv = (value(eps) - value(-eps)) / (2 * eps)
        want = deriv * float(patch[up][0][b, su, j] - fU0[b, su, j]) if j < FU else deriv
        got = float(rows[(b, s, k)][su, j])
        err = abs(got - want) / (abs(want) + 1e-9)
        worst = max(worst, err)
        assert abs(got - want) <= 1e-6 * abs(want) + 1e-9, f"{up}->{down} {(b, s, k, su, j)}: autograd {got} vs fd {want}"
    return worst, len(picks)


# --------------------------------------------------------------------------------------------
# Thresholds, aggregation, output
# --------------------------------------------------------------------------------------------

def pick_threshold(target, values, spread=0.05):
    """The threshold within target·(1 ± spread) farthest (relatively) from every |value|."""
    vals = sorted({abs(float(v)) for v in values if abs(float(v)) > 0})
    lo, hi = target * (1 - spread), target * (1 + spread)
    inside = [v for v in vals if lo <= v <= hi]
    cuts = [lo] + inside + [hi]
    best, gap = target, -1.0
    for a, b in zip(cuts, cuts[1:]):
        mid = math.sqrt(a * b)
        g = min(mid / a, b / mid) - 1 if a > 0 else 0
        if g > gap:
            best, gap = mid, g
    t = float(f"{best:.4g}")
    return t, margin(t, vals)


def margin(t, values):
    return min((abs(abs(float(v)) - t) for v in values), default=float("inf"))


def aggregate_nodes(effect, aggregation):
    act, err = effect
    B = act.shape[0]
    if aggregation == "sum":
        return act.sum(1).sum(0) / B, err.sum(1).sum(0) / B
    return act.sum(0) / B, err.sum(0) / B


def aggregate_edges(rows, aggregation, B, S, FD):
    """{key: row} where key = k (sum) or (s_d, k) (none); rows [S_u·(F_U+1)] or [F_U+1]."""
    out = {}
    for (b, s, k), row in rows.items():
        key, val = (k, row.sum(0)) if aggregation == "sum" else ((s, k), row.reshape(-1))
        out[key] = out.get(key, 0) + val / B
    return out


def build_fixture(spec, out_root):
    t0 = time.time()
    name = spec["name"]
    folder = os.path.join(MODELS_DIR, name)
    model = load_model(folder, spec.get("include_embed", False))
    base = os.path.join(folder, spec["base"]) if spec.get("base") else None
    with open(os.path.join(folder, "model.safetensors"), "rb") as f:
        model_sha256 = hashlib.sha256(f.read()).hexdigest()   # the test refuses a regenerated model
    d, L = model.d, model.L
    gen = torch.Generator().manual_seed(spec["seed"])

    # 1. the forward is checked against the model folder's own reference (make_models.py's)
    with open(os.path.join(folder, "ref.json"), encoding="utf-8") as f:
        mref = json.load(f)
    worst = 0.0
    for t, (ids, lg) in enumerate(zip(mref["tokens"], mref["logits"])):
        logits, acts = model.activations(torch.tensor([ids]))
        worst = max(worst, float((logits[0] - torch.tensor(lg, dtype=DT)).abs().max()))
        for sub in [s for s in model.submodules if s in mref["submodules"]]:   # Gemma 2's unscaled embed is not in ref.json
            worst = max(worst, float((acts[sub][0] - torch.tensor(mref["submodules"][sub][t], dtype=DT)).abs().max()))
    assert worst < 2e-4, f"{name}: forward disagrees with ref.json by {worst}"

    # 2. prompts: random words; the patch differs from the clean prompt at one position
    with open(os.path.join(folder, "tokenizer.json")) as f:
        vocab = json.load(f)["model"]["vocab"]
    words = sorted((i, w) for w, i in vocab.items() if i >= 3 and w.isalpha())
    word_ids = [i for i, _ in words]
    inv = {i: w for w, i in vocab.items()}
    B, S = spec["n_examples"], spec["seq_len"]
    pick = lambda n: [word_ids[int(i)] for i in torch.randint(len(word_ids), (n,), generator=gen)]  # noqa: E731
    clean_ids, patch_ids, ca, pa = [], [], [], []
    for b in range(0 if base else B):
        c = pick(S)
        p = list(c)
        pos = 1 + b % (S - 1)                      # differing positions 1..S-1 across examples
        while p[pos] == c[pos]:
            p[pos] = pick(1)[0]
        a1, a2 = pick(1)[0], pick(1)[0]
        while a2 == a1:
            a2 = pick(1)[0]
        clean_ids.append(c); patch_ids.append(p); ca.append(a1); pa.append(a2)
    if base:   # the base fixture's prompts
        with open(os.path.join(base, "data.json")) as f:
            bd = json.load(f)
        assert (bd["n_examples"], bd["seq_len"], bd["model_safetensors_sha256"]) == (B, S, model_sha256)
        clean_ids, patch_ids, ca, pa = bd["clean_ids"], bd["patch_ids"], bd["clean_answer"], bd["patch_answer"]
    ids_c, ids_p = torch.tensor(clean_ids), torch.tensor(patch_ids)
    ca_t, pa_t = torch.tensor(ca), torch.tensor(pa)

    # 3. SAEs, calibrated on random token sequences, nudged away from ReLU kinks on the prompts
    calib_ids = torch.tensor([pick(8) for _ in range(48)])
    _, calib = model.activations(calib_ids)
    _, acts_c = model.activations(ids_c)
    _, acts_p = model.activations(ids_p)
    sae_root = os.path.join(out_root, "saes")
    if os.path.isdir(sae_root):
        shutil.rmtree(sae_root)
    saes, kink = {}, {}
    Fn = spec["d_sae"]
    for sub in model.submodules:
        w = model.width(sub)   # Gemma's attn_l: heads x head_dim
        if base and os.path.isdir(os.path.join(base, "saes", fc_dir(sub))):   # the base fixture's SAE
            saes[sub] = read_saelens(os.path.join(base, "saes", fc_dir(sub))) if spec["sae_format"] == "saelens" \
                else read_dictionary_learning(os.path.join(base, "saes", fc_dir(sub)))
            pre = torch.cat([saes[sub].pre(acts_c[sub]).reshape(-1, Fn), saes[sub].pre(acts_p[sub]).reshape(-1, Fn)])
            kink[sub] = float((pre.abs() / pre.std(0)).min())
            continue
        W_enc, b_enc, W_dec, b_dec = random_sae(gen, w, Fn, calib[sub].reshape(-1, w))
        # no pre-activation of the prompts within 2e-3 (relative to its spread) of the ReLU kink
        for _ in range(50):
            probe = SAE(W_enc, b_enc, W_dec, b_dec)
            pre = torch.cat([probe.pre(acts_c[sub]).reshape(-1, Fn), probe.pre(acts_p[sub]).reshape(-1, Fn)])
            tol = 2e-3 * pre.std(0)
            bad = (pre.abs() < tol).any(0)
            if not bad.any():
                break
            b_enc = (b_enc.to(DT) + bad.to(DT) * 3 * tol).to(torch.float32)
        else:
            raise RuntimeError(f"{name} {sub}: could not move pre-activations off the ReLU kink")
        kink[sub] = float((pre.abs() / pre.std(0)).min())
        sub_dir = os.path.join(sae_root, fc_dir(sub))
        if spec["sae_format"] == "saelens":
            write_saelens(sub_dir, name, model.hook_name(sub), w, Fn, W_enc, b_enc, W_dec, b_dec)
            saes[sub] = read_saelens(sub_dir)
        else:
            write_dictionary_learning(sub_dir, name, sub, w, Fn, spec["seed"], W_enc, b_enc, W_dec, b_dec)
            saes[sub] = read_dictionary_learning(sub_dir)
        assert torch.equal(saes[sub].W_enc, W_enc.to(DT)) and torch.equal(saes[sub].b_enc, b_enc.to(DT))

    clean, patch = states(saes, acts_c), states(saes, acts_p)
    with torch.no_grad():
        m_clean = metric_fn(model.run(ids_c), ca_t, pa_t)
        m_patch = metric_fn(model.run(ids_p), ca_t, pa_t)

    data = {
        "format": FORMAT, "model": name, "description": "contrastive prompt pairs (token ids of the model's tokenizer); "
        "the patch prompt differs from the clean one at one position", "n_examples": B, "seq_len": S,
        "model_safetensors_sha256": model_sha256,
        "clean_ids": clean_ids, "patch_ids": patch_ids, "clean_answer": ca, "patch_answer": pa,
        "clean_text": [" ".join(inv[i] for i in r) for r in clean_ids],
        "patch_text": [" ".join(inv[i] for i in r) for r in patch_ids],
        "clean_answer_text": [inv[i] for i in ca], "patch_answer_text": [inv[i] for i in pa],
    }
    dump_json(os.path.join(out_root, "data.json"), data, compact=True)

    common = {
        "format": FORMAT, "model": name, "model_type": model.kind, "parallel_residual": model.parallel,
        "torch_version": torch.__version__, "compute_dtype": "float64", "seed": spec["seed"],
        "submodules": model.submodules, "d_sae": {s: Fn for s in model.submodules}, "error_node_index": Fn,
        "n_examples": B, "seq_len": S,
        "metric": {"definition": "logits[:, -1, patch_answer] - logits[:, -1, clean_answer]",
                   "clean": r7(m_clean), "patch": r7(m_patch),
                   "clean_mean": r7(float(m_clean.mean())), "patch_mean": r7(float(m_patch.mean()))},
        "total_effect": {"per_example": r7(m_patch - m_clean), "mean": r7(float((m_patch - m_clean).mean()))},
        "sae_min_relative_distance_to_relu_kink": {s: r7(v) for s, v in kink.items()},
    }

    # 4. node effects: attrib (T = 1) and ig (T = steps)
    attrib, _ = node_effects(model, saes, ids_c, ca_t, pa_t, clean, patch, 1)
    ig, grads = node_effects(model, saes, ids_c, ca_t, pa_t, clean, patch, spec["steps"])
    sizes = {}
    for agg in ("sum", "none"):
        out = dict(common, method="attrib", steps=1, aggregation=agg)
        out["nodes"] = {}
        for sub in model.submodules:
            a, e = aggregate_nodes(attrib[sub], agg)
            out["nodes"][sub] = {"act": r7(a), "err": r7(e)}
        path = os.path.join(out_root, f"attrib_{agg}.json")
        dump_json(path, out, compact=True)
        sizes[os.path.basename(path)] = os.path.getsize(path)

    # 4b. exact node effects (spec["exact"]): the metric change of each single patch
    if spec.get("exact"):
        exact = exact_effects(model, saes, ids_c, ca_t, pa_t, clean, patch, m_clean)
        for agg in ("sum", "none"):
            out = dict(common, method="exact", aggregation=agg)
            out["nodes"] = {}
            for sub in model.submodules:
                a, e = aggregate_nodes(exact[sub], agg)
                out["nodes"][sub] = {"act": r7(a), "err": r7(e)}
            path = os.path.join(out_root, f"exact_{agg}.json")
            dump_json(path, out, compact=True)
            sizes[os.path.basename(path)] = os.path.getsize(path)

    # 5. thresholds away from every per-example and aggregated value
    per_example = [v for sub in model.submodules for v in torch.cat([ig[sub][0].reshape(-1), ig[sub][1].reshape(-1)]).tolist()]
    aggregated = []
    for agg in ("sum", "none"):
        for sub in model.submodules:
            a, e = aggregate_nodes(ig[sub], agg)
            aggregated += a.reshape(-1).tolist() + e.reshape(-1).tolist()
    node_t, node_margin = pick_threshold(spec["node_threshold"], per_example + aggregated)
    nodes = {sub: selected_nodes(ig[sub], node_t) for sub in model.submodules}

    # 6. edges: per pair, one full backward per selected downstream node
    pairs = model.edge_pairs()
    rows = {}
    fd_worst, fd_n = 0.0, 0
    for (up, down, mids) in pairs:
        rows[(up, down)] = pair_rows(model, saes, ids_c, up, down, mids, clean, patch, grads, nodes[down])
        w, n = fd_check(model, saes, ids_c, up, down, mids, clean, patch, grads, rows[(up, down)], acts_c, 6, gen)
        fd_worst, fd_n = max(fd_worst, w), fd_n + n

    last = f"resid_{L - 1}"
    agg_edges = {agg: {p[:2]: aggregate_edges(rows[p[:2]], agg, B, S, Fn) for p in pairs} for agg in ("sum", "none")}
    agg_nodes = {agg: {sub: aggregate_nodes(ig[sub], agg) for sub in model.submodules} for agg in ("sum", "none")}

    # circuit edge threshold: away from every aggregated edge between kept nodes (and y edges)
    def kept(agg, sub):
        a, e = agg_nodes[agg][sub]
        full = torch.cat([a, e[..., None]], -1)
        return {tuple(int(v) for v in i) for i in (full.abs() > node_t).nonzero()}
    cand = []
    for agg in ("sum", "none"):
        for (up, down), E in agg_edges[agg].items():
            ku, kd = kept(agg, up), kept(agg, down)
            for key, row in E.items():
                if (key if agg == "none" else (key,)) not in kd:
                    continue
                r = row if agg == "sum" else row.reshape(S, Fn + 1)
                for idx in r.nonzero():
                    if tuple(int(v) for v in idx) in ku:
                        cand.append(float(r[tuple(idx)]))
        a, e = agg_nodes[agg][last]
        cand += torch.cat([a, e[..., None]], -1).reshape(-1).tolist()
    edge_t, edge_margin = pick_threshold(spec["edge_threshold"], cand, 0.15)

    for agg in spec.get("ig_aggregations", ("sum", "none")):
        out = dict(common, method="ig", steps=spec["steps"], aggregation=agg, node_threshold=node_t,
                   edge_threshold=edge_t)
        out["node_threshold_margin"] = r7(node_margin)
        out["edge_threshold_margin"] = r7(edge_margin)
        out["fd_check"] = {"entries": fd_n, "max_relative_error": r7(fd_worst),
                           "description": "largest and random edge entries of every pair vs central finite differences "
                                          "(midstream held at clean values), float64"}
        out["nodes"] = {}
        for sub in model.submodules:
            a, e = agg_nodes[agg][sub]
            out["nodes"][sub] = {"act": r7(a), "err": r7(e)}
        out["downstream_nodes_above_threshold"] = {sub: len(nodes[sub]) for sub in model.submodules}
        # edge entries above a floor (all when there are few)
        edges = collections.defaultdict(dict)
        all_vals = [abs(float(v)) for E in agg_edges[agg].values() for row in E.values() for v in row.tolist() if v != 0]
        floor = 0.0
        max_entries = spec.get("max_entries", MAX_ENTRIES)
        if len(all_vals) > max_entries:
            floor = float(f"{sorted(all_vals, reverse=True)[max_entries]:.3g}")
            floor, _ = pick_threshold(floor, all_vals, 0.2)
        for (up, down, _m) in pairs:
            E = agg_edges[agg][(up, down)]
            entries, nnz, tot, ab, mx = [], 0, 0.0, 0.0, 0.0
            for key in sorted(E):
                row = E[key]
                for u in row.nonzero().reshape(-1).tolist():
                    w = float(row[u])
                    nnz += 1
                    tot += w
                    ab += abs(w)
                    mx = max(mx, abs(w))
                    if abs(w) > floor:
                        if agg == "sum":
                            entries.append([key, u, r7(w)])
                        else:
                            entries.append([key[0], key[1], u // (Fn + 1), u % (Fn + 1), r7(w)])
            edges[up][down] = {"n_rows": len(E), "nnz": nnz, "sum": r7(tot), "abs_sum": r7(ab), "max_abs": r7(mx),
                               "entries": entries}
        a, e = agg_nodes[agg][last]
        edges[last]["y"] = {"dense": r7(torch.cat([a, e[..., None]], -1))}
        out["edges"] = edges
        out["edges_entry_floor"] = floor
        # circuit: kept nodes and the edges between them above the edge threshold
        circ_nodes = {}
        for sub in model.submodules:
            a, e = agg_nodes[agg][sub]
            full = torch.cat([a, e[..., None]], -1)
            circ_nodes[sub] = [[*(int(v) for v in i), r7(float(full[tuple(i)]))] for i in (full.abs() > node_t).nonzero()]
        circ_edges = []
        for (up, down, _m) in pairs:
            ku, kd = kept(agg, up), kept(agg, down)
            for key, row in sorted(agg_edges[agg][(up, down)].items()):
                kd_idx = [key] if agg == "sum" else list(key)
                if tuple(kd_idx) not in kd:
                    continue
                for u in row.nonzero().reshape(-1).tolist():
                    ui = [u] if agg == "sum" else [u // (Fn + 1), u % (Fn + 1)]
                    w = float(row[u])
                    if tuple(ui) in ku and abs(w) > edge_t:
                        circ_edges.append([up, ui, down, kd_idx, r7(w)])
        a, e = agg_nodes[agg][last]
        full = torch.cat([a, e[..., None]], -1)
        for i in (full.abs() > node_t).nonzero():
            w = float(full[tuple(i)])
            if abs(w) > edge_t:
                circ_edges.append([last, [int(v) for v in i], "y", [], r7(w)])
        out["circuit"] = {"nodes": circ_nodes, "edges": circ_edges}
        path = os.path.join(out_root, f"ig_{agg}.json")
        dump_json(path, out, compact=True)
        sizes[os.path.basename(path)] = os.path.getsize(path)

    with open(os.path.join(out_root, "README.md"), "w") as f:
        f.write(README.format(name=name, model_desc=MODEL_DESC[fixture_key(spec)], d_sae=Fn, sae_desc=SAE_DESC[spec["sae_format"]],
                              n_examples=B, seq_len=S, pairs_desc=f"{len(pairs)} edge pairs plus resid_{L - 1} → y."))
    n_rows = {f"{u}>{d_}": len(rows[(u, d_)]) for (u, d_, _m) in pairs}
    return {"name": name, "seconds": round(time.time() - t0, 1), "forward_vs_ref_json": worst, "node_threshold": node_t, "node_margin": node_margin,
            "edge_threshold": edge_t, "edge_margin": edge_margin, "fd_checked": fd_n, "fd_worst": fd_worst,
            "rows": n_rows, "sizes": sizes,
            "metric_clean": r7(m_clean), "total_effect": r7(float((m_patch - m_clean).mean())),
            "selected": {s: len(v) for s, v in nodes.items()}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="*", help="fixtures to (re)generate: model names, or name/out (gemma2-a/edges-embed)")
    args = ap.parse_args()
    for spec in FIXTURES:
        if args.only and fixture_key(spec) not in args.only:
            continue
        out_root = os.path.join(MODELS_DIR, spec["name"], spec.get("out", "edges"))
        os.makedirs(out_root, exist_ok=True)
        info = build_fixture(spec, out_root)
        total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(out_root) for f in fs)
        print(json.dumps(info))
        print(f"{spec['name']}: {spec.get('out', 'edges')}/ {total / 1024:.0f} KB")


if __name__ == "__main__":
    main()
