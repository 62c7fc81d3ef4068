#!/usr/bin/env python3
"""Tiny random SAEs in Llama Scope's release layout (fnlp/Llama-Scope, written by OpenMOSS
lm-saes 1.x), with reference outputs from a PyTorch port of lm-saes 1.x's inference path.

Writes packages/dictionaries/test-data/llama-scope/:
  <case>/hyperparams.json               SAEConfig.save_hyperparameters' keys
  <case>/checkpoints/final.safetensors  encoder.weight [F, D], encoder.bias [F], decoder.weight [D, F],
                                        decoder.bias [D] (raw training weights, torch.nn.Linear layout)
  <case>.ref.json                       as make_sae_refs.py's: x, features = encode(x), decode, cot + vjp,
                                        feature_ids + feature_grads (autograd)

Ported from (read, not imported) lm-saes v1.0.0/v1.1.0 src/lm_saes/sae.py: SparseAutoEncoder.from_config
(standardize_parameters_of_dataset_activation_scaling, then transform_to_unit_decoder_norm when
sparsity_include_decoder_norm, then a TopK with jump_relu_threshold > 0 runs as JumpReLU),
compute_norm_factor, encode (apply_decoder_bias_to_pre_encoder, activation_function_factory) and
decode. Features are what `SparseAutoEncoder.from_pretrained(dir).encode(x)` returns.

The jumprelu case also checks the port against lm-saes' training-time path on the raw weights
(x scaled by sqrt(d_model)/avg_norm_in before encoding, the output scaled back by the out factor):
the reconstructions must agree.

Also writes lm-saes 2.x folders (v2-*: config.json + sae_weights.safetensors with W_E, b_E, W_D, b_D,
activation_function.log_jumprelu_threshold and dataset_average_activation_norm.<hook>); see make_v2.

    python3 tools/refgen/make_llama_scope_refs.py     (re-runs itself with Debian's /usr/bin/python3)
Deterministic: re-running rewrites byte-identical files.
"""

import math
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# make_sae_refs re-runs this script with Debian's /usr/bin/python3 when this python has no torch.
from make_sae_refs import D, F, ROOT, gen, reference, write_json  # noqa: E402
from make_models import write_safetensors  # noqa: E402

import torch  # noqa: E402

OUT = os.path.join(ROOT, "packages", "dictionaries", "test-data", "llama-scope")
torch.set_default_dtype(torch.float32)


def hyperparams(hook, **over):
    """The keys lm-saes 1.x writes (SAEConfig.to_dict minus loading info); values as a Llama Scope release has them."""
    h = {
        "device": "cpu", "seed": 42, "dtype": "torch.float32",
        "hook_point_in": hook, "hook_point_out": hook,
        "use_decoder_bias": True, "apply_decoder_bias_to_pre_encoder": False,
        "expansion_factor": F // D, "d_model": D, "d_sae": F, "bias_init_method": "all_zero",
        "act_fn": "jumprelu", "jump_relu_threshold": 0.0,
        "norm_activation": "dataset-wise", "dataset_average_activation_norm": {"in": 3.25, "out": 3.25},
        "decoder_exactly_fixed_norm": False, "sparsity_include_decoder_norm": True, "use_glu_encoder": False,
        "init_decoder_norm": 0.5, "init_encoder_norm": None, "init_encoder_with_decoder_transpose": True,
        "lp": 1, "l1_coefficient": 8e-05, "l1_coefficient_warmup_steps": 0.1, "top_k": 50, "k_warmup_steps": 0.1,
        "use_batch_norm_mse": True, "use_ghost_grads": False, "tp_size": 1, "ddp_size": 1,
    }
    h.update(over)
    return h


def raw_weights(seed, dtype):
    """Raw training weights; decoder columns of norm 0.5 … 2 (Llama Scope's are not unit norm), rounded to `dtype`."""
    r = gen(seed)
    dec = r(D, F)
    dec = dec / dec.norm(dim=0, keepdim=True) * (0.5 + 1.5 * torch.rand(F, generator=torch.Generator().manual_seed(seed + 7)))
    sd = {"encoder.weight": r(F, D, scale=0.5), "encoder.bias": r(F, scale=0.3), "decoder.weight": dec, "decoder.bias": r(D, scale=0.4)}
    return {k: v.to(dtype).to(torch.float32) for k, v in sd.items()}


# ---------------------------------------------------------------- lm-saes 1.x inference (the reference)

def norm_factors(h):
    """compute_norm_factor for "dataset-wise"; 1 for anything but token-/batch-wise (which these cases do not use)."""
    if h["norm_activation"] != "dataset-wise":
        return 1.0, 1.0
    n = h["dataset_average_activation_norm"]
    return math.sqrt(h["d_model"]) / n["in"], math.sqrt(h["d_model"]) / n["out"]


def from_config(h, raw):
    """SparseAutoEncoder.from_config's weight transforms; returns (state_dict, act_fn)."""
    sd = {k: v.clone() for k, v in raw.items()}
    act_fn = h["act_fn"]
    if h["norm_activation"] == "dataset-wise":  # standardize_parameters_of_dataset_activation_scaling
        s_in, s_out = norm_factors(h)
        sd["encoder.bias"] = sd["encoder.bias"] / s_in
        sd["decoder.bias"] = sd["decoder.bias"] / s_out
        sd["decoder.weight"] = sd["decoder.weight"] * s_in / s_out
    if h["sparsity_include_decoder_norm"]:  # transform_to_unit_decoder_norm
        n = torch.norm(sd["decoder.weight"], p=2, dim=0)
        sd["decoder.weight"] = sd["decoder.weight"] / n
        sd["encoder.weight"] = sd["encoder.weight"] * n[:, None]
        sd["encoder.bias"] = sd["encoder.bias"] * n
    if act_fn == "topk" and h["jump_relu_threshold"] > 0:
        act_fn = "jumprelu"
    return sd, act_fn


def lm_saes_encode(h, sd, act_fn, x):
    """encode() after from_config: norm_activation is then "inference" (factor 1)."""
    if h["use_decoder_bias"] and h["apply_decoder_bias_to_pre_encoder"]:
        x = x - sd["decoder.bias"]
    pre = x @ sd["encoder.weight"].T + sd["encoder.bias"]
    if act_fn == "relu":
        return torch.clamp(pre, min=0.0)
    if act_fn == "jumprelu":
        return pre.where(pre > h["jump_relu_threshold"], torch.zeros_like(pre))
    acts = torch.clamp(pre, min=0.0)  # topk: decoder norms are 1 after the transform
    true_acts = acts * torch.norm(sd["decoder.weight"], p=2, dim=0) if h["sparsity_include_decoder_norm"] else acts
    top = torch.topk(true_acts, k=h["top_k"], dim=-1)
    return torch.zeros_like(acts).scatter(-1, top.indices, acts.gather(-1, top.indices))


def lm_saes_decode(sd, f):
    return f @ sd["decoder.weight"].T + sd["decoder.bias"]


def training_frame_check(h, raw, sd, act_fn, x):
    """lm-saes' training path on the raw weights: x_n = s_in·x, pre on x_n, active where the inference
    pre-activation n_j·pre/s_in exceeds the threshold, x̂ = (f W_dec + b_dec)/s_out. Must equal the port's."""
    assert not h["apply_decoder_bias_to_pre_encoder"] and act_fn == "jumprelu"
    s_in, s_out = norm_factors(h)
    pre = (x * s_in) @ raw["encoder.weight"].T + raw["encoder.bias"]
    n = torch.norm(raw["decoder.weight"] * s_in / s_out, dim=0)
    f = pre * ((pre * n / s_in) > h["jump_relu_threshold"]).float()
    xhat_train = (f @ raw["decoder.weight"].T + raw["decoder.bias"]) / s_out
    xhat = lm_saes_decode(sd, lm_saes_encode(h, sd, act_fn, x))
    assert torch.allclose(xhat_train, xhat, atol=1e-5, rtol=1e-5), (xhat_train - xhat).abs().max()


# ---------------------------------------------------------------- cases

ARCH = {"jumprelu": "jumprelu", "topk": "topk", "relu": "relu"}


def case(name, seed, h, weights_at, dtype, tensor_dtype, threshold_quantile=None, check_training=False):
    raw = raw_weights(seed, dtype)
    r = gen(seed + 100)
    x, cot = r(5, D, scale=2.0), r(5, F)
    if threshold_quantile is not None:
        # as lm-saes' post_process_topk_to_jumprelu_for_inference: a threshold on the folded, clamped pre-activations
        sd0, _ = from_config({**h, "act_fn": "relu"}, raw)
        pre = torch.clamp(x @ sd0["encoder.weight"].T + sd0["encoder.bias"], min=0.0).flatten()
        h = {**h, "jump_relu_threshold": float(torch.quantile(pre[pre > 0], threshold_quantile))}
    sd, act_fn = from_config(h, raw)
    if check_training:
        training_frame_check(h, raw, sd, act_fn, x)
    ref = reference(lambda xx: lm_saes_encode(h, sd, act_fn, xx), lambda f: lm_saes_decode(sd, f), x, cot)
    d = os.path.join(OUT, name)
    os.makedirs(os.path.dirname(os.path.join(d, weights_at)), exist_ok=True)
    write_json(os.path.join(d, "hyperparams.json"), h)
    write_safetensors(os.path.join(d, weights_at), {k: (v, tensor_dtype) for k, v in raw.items()}, {"version": "1.1.0"})
    assert any(v != 0 for row in ref["features"] for v in row), name
    write_json(os.path.join(OUT, name + ".ref.json"), {
        "case": name, "loader": "llama-scope", "options": {},
        "expect": {"architecture": ARCH[act_fn], "dIn": D, "dSae": F, "hook": h["hook_point_in"]}, **ref,
    })


# ---------------------------------------------------------------- lm-saes 2.x (config.json) — the reference
# Ported from (read, not imported) OpenMOSS Language-Model-SAEs v2.0.0b1 … v2.0.0b32 (the same in all):
# src/lm_saes/models/sae.py SparseAutoEncoder.encode / decode / standardize_parameters_of_dataset_norm,
# models/sparse_dictionary.py (SparseDictionaryConfig, full_state_dict, from_local,
# activation_function_factory, compute_norm_factor), activation_functions.py JumpReLU, utils/math.py topk.

def v2_config(hook, **over):
    """SAEConfig.model_dump() in field order (device and dtype are excluded from the dump)."""
    c = {
        "sae_type": "sae", "d_model": D, "expansion_factor": float(F // D), "use_decoder_bias": True,
        "act_fn": "jumprelu", "norm_activation": "dataset-wise", "sparsity_include_decoder_norm": True, "top_k": 50,
        "use_triton_kernel": False, "sparsity_threshold_for_triton_spmm_kernel": 0.996, "jumprelu_threshold_window": 2.0,
        "hook_point_in": hook, "hook_point_out": hook, "use_glu_encoder": False,
    }
    c.update(over)
    return c


def v2_raw_weights(seed, c, dtype):
    """Training-frame weights in 2.x's layout (W_E [D, F], W_D [F, D]); decoder rows of norm 0.5 … 2."""
    r = gen(seed)
    W_D = r(F, D)
    W_D = W_D / W_D.norm(dim=1, keepdim=True) * (0.5 + 1.5 * torch.rand(F, generator=torch.Generator().manual_seed(seed + 7)))[:, None]
    sd = {"W_E": r(D, F, scale=0.5), "b_E": r(F, scale=0.3), "W_D": W_D}
    if c["use_decoder_bias"]:
        sd["b_D"] = r(D, scale=0.4)
    return {k: v.to(dtype).to(torch.float32) for k, v in sd.items()}


def v2_encode(c, sd, x):
    """SparseAutoEncoder.encode on already-normalised x (what the trainer and evaluator call)."""
    h = x @ sd["W_E"] + sd["b_E"]
    n = torch.norm(sd["W_D"], p=2, dim=1)
    if c["sparsity_include_decoder_norm"]:
        h = h * n
    act = c["act_fn"]
    if act == "relu":
        f = h * h.gt(0).to(h.dtype)
    elif act == "jumprelu":
        f = h * h.gt(sd["activation_function.log_jumprelu_threshold"].exp()).to(h.dtype)
    else:  # topk: x·1[x > 0], then keep the k largest (mask built without grad, as utils/math.topk)
        a = h * h.gt(0).to(h.dtype)
        with torch.no_grad():
            idx = torch.topk(a, k=c["top_k"], dim=-1, sorted=False).indices
            mask = torch.zeros_like(a, dtype=torch.bool).scatter(-1, idx, True)
        f = a * mask.to(a.dtype)
    if c["sparsity_include_decoder_norm"]:
        f = f / n
    return f


def v2_decode(c, sd, f):
    return f @ sd["W_D"] + sd["b_D"] if c["use_decoder_bias"] else f @ sd["W_D"]


def v2_scale(c, norms):
    """compute_norm_factor: √d_model / the hook point's average norm for "dataset-wise"; 1 for "inference"."""
    return math.sqrt(c["d_model"]) / norms[c["hook_point_in"]] if c["norm_activation"] == "dataset-wise" else 1.0


def v2_fold(c, sd, s):
    """standardize_parameters_of_dataset_norm (one hook point: W_D · s/s unchanged; the JumpReLU threshold is not touched)."""
    out = dict(sd)
    out["b_E"] = sd["b_E"] / s
    if c["use_decoder_bias"]:
        out["b_D"] = sd["b_D"] / s
    return out


def v2_case(name, seed, c, weights_at, dtype, tensor_dtype, norm=None):
    raw = v2_raw_weights(seed, c, dtype)
    r = gen(seed + 100)
    x, cot = r(5, D, scale=2.0), r(5, F)
    norms = {c["hook_point_in"]: norm} if norm is not None else None
    s = v2_scale(c, norms)
    if c["act_fn"] == "jumprelu":
        # Per-feature thresholds around the trained scores' median, rounded as the file stores them.
        score = torch.relu((s * x @ raw["W_E"] + raw["b_E"]) * (raw["W_D"].norm(dim=1) if c["sparsity_include_decoder_norm"] else 1))
        med = score[score > 0].median()
        theta = med * (0.4 + 1.2 * torch.rand(F, generator=torch.Generator().manual_seed(seed + 9)))
        raw["activation_function.log_jumprelu_threshold"] = theta.log().to(dtype).to(torch.float32)
    check_margins(c, raw, s, x, name)
    folded = v2_fold(c, raw, s)

    def encode(xx):  # sfc's features: the trained features of s·x, divided by s (raw units)
        return v2_encode(c, raw, s * xx) / s

    def decode(f):
        return v2_decode(c, folded, f)

    f = encode(x)
    # The reconstruction is lm-saes' training path: normalise, encode, decode, denormalise.
    assert torch.allclose(decode(f), v2_decode(c, raw, v2_encode(c, raw, s * x)) / s, atol=1e-5, rtol=1e-5), name
    # lm-saes' own folded inference (from_pretrained(fold_activation_scale=True), norm_activation "inference"):
    lm = v2_encode({**c, "norm_activation": "inference"}, folded, x)
    moved = int(((lm != 0) != (f != 0)).sum())
    if c["act_fn"] != "jumprelu" or s == 1.0:
        assert torch.allclose(lm, f, atol=1e-6, rtol=1e-5) and moved == 0, name
    else:
        print(f"{name}: lm-saes' folded JumpReLU gate differs from the trained one at {moved} of {f.numel()} entries")
    ref = reference(encode, decode, x, cot)
    d = os.path.join(OUT, name)
    os.makedirs(os.path.dirname(os.path.join(d, weights_at)), exist_ok=True)
    write_json(os.path.join(d, "config.json"), c)
    tensors = {k: (v, tensor_dtype) for k, v in raw.items()}
    # full_state_dict: the measured norm, or torch.empty(()) per hook point (arbitrary bits; NaN here) when there is none.
    tensors["dataset_average_activation_norm." + c["hook_point_in"]] = (
        torch.tensor(norm if norm is not None else float("nan")), tensor_dtype)
    write_safetensors(os.path.join(d, weights_at), tensors, {"version": "2.0.0b32"})
    assert any(v != 0 for row in ref["features"] for v in row), name
    write_json(os.path.join(OUT, name + ".ref.json"), {
        "case": name, "loader": "llama-scope", "options": {},
        "expect": {"architecture": c["act_fn"], "dIn": D, "dSae": F, "hook": c["hook_point_in"]}, **ref,
    })


def check_margins(c, raw, s, x, name):
    """No gate decision within 1e-4 of its cut, so f32 rounding cannot flip it; TopK's scale must matter."""
    h = s * x @ raw["W_E"] + raw["b_E"]
    n = raw["W_D"].norm(dim=1) if c["sparsity_include_decoder_norm"] else torch.ones(F)
    score = h * n
    if c["act_fn"] == "jumprelu":
        theta = raw["activation_function.log_jumprelu_threshold"].exp()
        assert ((score - theta).abs() / theta).min() > 1e-4, name
    elif c["act_fn"] == "topk":
        top = torch.relu(score).sort(dim=-1, descending=True).values
        k = c["top_k"]
        assert ((top[:, k - 1] - top[:, k]) / top[:, k - 1]).min() > 1e-4, name
        by_h = torch.topk(torch.relu(h), k).indices.sort().values
        by_score = torch.topk(torch.relu(score), k).indices.sort().values
        assert (by_h != by_score).any(), f"{name}: the decoder norms do not change the selection; pick another seed"


def make_v2():
    # Trained with dataset-wise norms and saved unfolded (upload_to_hf), JumpReLU, bf16 (cfg.dtype, also the norm's).
    v2_case("v2-L3R-jumprelu", 71, v2_config("blocks.3.hook_resid_post"), "sae_weights.safetensors",
            torch.bfloat16, "BF16", norm=3.25)
    # TopK ranked by h·‖W_D‖, at lm-saes' checkpoints/final.safetensors.
    v2_case("v2-L1A-topk", 72, v2_config("blocks.1.hook_attn_out", act_fn="topk", top_k=3),
            "checkpoints/final.safetensors", torch.float32, "F32", norm=5.5)
    # JumpReLU gated on h alone (sparsity_include_decoder_norm false): the threshold only takes the dataset scale.
    v2_case("v2-L0R-jumprelu-plain", 74, v2_config("blocks.0.hook_resid_post", sparsity_include_decoder_norm=False),
            "sae_weights.safetensors", torch.float32, "F32", norm=2.0)
    # Already folded ("inference"), ReLU, no decoder bias, no decoder-norm gating; the unused norm slot holds NaN.
    v2_case("v2-L2M-relu", 73, v2_config("blocks.2.hook_mlp_out", act_fn="relu", norm_activation="inference",
                                         use_decoder_bias=False, sparsity_include_decoder_norm=False),
            "sae_weights.safetensors", torch.float32, "F32")



def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    # A release SAE (L15R-8x): dataset-wise norms, unnormalised decoder, JumpReLU, bf16 weights.
    case("L3R-2x", 61, hyperparams("blocks.3.hook_resid_post"), "checkpoints/final.safetensors",
         torch.bfloat16, "BF16", threshold_quantile=0.6, check_training=True)
    # TopK (no threshold) with different in/out norms, b_dec subtracted before encoding, weights at the top level.
    case("L1A-2x-topk", 62, hyperparams("blocks.1.hook_attn_out", act_fn="topk", top_k=3, apply_decoder_bias_to_pre_encoder=True,
                                        dataset_average_activation_norm={"in": 5.5, "out": 1.75}),
         "final.safetensors", torch.float32, "F32")
    # lm-saes' upload layout: already folded ("inference"), ReLU, no decoder-norm fold.
    case("L2M-2x-relu", 63, hyperparams("blocks.2.hook_mlp_out", act_fn="relu", norm_activation="inference",
                                        dataset_average_activation_norm=None, sparsity_include_decoder_norm=False),
         "sae_weights.safetensors", torch.float32, "F32")
    make_v2()
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(OUT) for f in fs)
    print(f"wrote {OUT}: {total / 1024:.0f} KiB")
    assert total < 256 * 1024


if __name__ == "__main__":
    main()
