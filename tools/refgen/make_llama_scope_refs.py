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
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(OUT) for f in fs)
    print(f"wrote {OUT}: {total / 1024:.0f} KiB")
    assert total < 256 * 1024


if __name__ == "__main__":
    main()
