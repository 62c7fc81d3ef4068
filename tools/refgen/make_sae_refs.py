#!/usr/bin/env python3
"""Small random SAEs of every architecture, in every on-disk format sfc reads, with reference
outputs computed by a direct PyTorch port of each library's formulas.

Writes packages/dictionaries/test-data/archs/:
  <case>/                 the SAE folder exactly as the library saves it
                          (SAELens cfg.json + sae_weights.safetensors; dictionary_learning
                          ae.pt via real torch.save [+ config.json]; Gemma Scope params.npz)
  <case>.ref.json         inputs and expected outputs in sfc's conventions:
                          x, features = encode(x), decode = decode(features),
                          cot + vjp = d(sum(cot * encode(x)))/dx (autograd),
                          feature_ids + feature_grads = d encode(x)[n, ids[n]] / dx[n]

Formulas ported from (read, not imported): SAELens sae_lens/saes/{sae,standard_sae,jumprelu_sae,
topk_sae,gated_sae,batchtopk_sae}.py and loading/pretrained_sae_loaders.py (handle_pre_6_0_config,
scaling_factor); dictionary_learning dictionary.py + trainers/{top_k,batch_top_k,
matryoshka_batch_top_k}.py; Gemma Scope's JumpReLU (as SAELens' gemma_2 loader).

Debian's python3-torch is enough (no sae_lens / safetensors packages needed):
    apt-get install -y python3-torch python3-numpy
    python3 tools/refgen/make_sae_refs.py
Deterministic: re-running rewrites byte-identical files.
"""

import json
import os
import shutil
import sys

if os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3") and os.path.exists("/usr/bin/python3"):
    try:
        import torch  # noqa: F401
    except ImportError:
        os.execv("/usr/bin/python3", ["/usr/bin/python3", *sys.argv])

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_models import write_safetensors as hf_write_safetensors  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "packages", "dictionaries", "test-data", "archs")
D, F, N = 8, 16, 5
torch.set_default_dtype(torch.float32)


# ---------------------------------------------------------------- file writers

def write_safetensors(path, tensors):
    """F32 safetensors in the layout HF's writer produces (shared with make_models.py)."""
    hf_write_safetensors(path, {n: (t.detach().contiguous().to(torch.float32), "F32") for n, t in tensors.items()})


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")


def rows(t):
    return [[float(v) for v in r] for r in t.detach().to(torch.float64).tolist()] if t.dim() == 2 else [float(v) for v in t.tolist()]


# ---------------------------------------------------------------- random weights

def gen(seed):
    g = torch.Generator().manual_seed(seed)
    return lambda *shape, scale=1.0: torch.randn(*shape, generator=g) * scale


def base_weights(seed, unit_decoder=True):
    r = gen(seed)
    W_dec = r(F, D)
    if unit_decoder:
        W_dec = W_dec / W_dec.norm(dim=1, keepdim=True)
    else:
        W_dec = W_dec * (0.5 + torch.rand(F, 1, generator=torch.Generator().manual_seed(seed + 7)))
    return {
        "W_enc": r(D, F, scale=0.6),
        "b_enc": r(F, scale=0.1),
        "W_dec": W_dec,
        "b_dec": r(D, scale=0.2),
    }


# ---------------------------------------------------------------- library formulas (ports)

def saelens_process_in(cfg, x, W):
    """process_sae_in: run-time normalisation, then − b_dec·apply_b_dec_to_input. Returns (x̃, out_fn)."""
    norm = cfg["normalize_activations"]
    if norm == "constant_norm_rescale":
        coeff = (cfg["d_in"] ** 0.5) / x.norm(dim=-1, keepdim=True)
        x = x * coeff
        out = lambda y: y / coeff
    elif norm == "layer_norm":
        mu = x.mean(dim=-1, keepdim=True)
        x = x - mu
        std = x.std(dim=-1, keepdim=True)
        x = x / (std + 1e-5)
        out = lambda y: y * std + mu
    else:
        out = lambda y: y
    return x - W["b_dec"] * float(cfg["apply_b_dec_to_input"]), out


def saelens_encode(cfg, W, x):
    arch = cfg["architecture"]
    xt, out = saelens_process_in(cfg, x, W)
    if arch == "gated":
        gate = ((xt @ W["W_enc"] + W["b_gate"]) > 0).float()
        mag = torch.relu(xt @ (W["W_enc"] * W["r_mag"].exp()) + W["b_mag"])
        return gate * mag, out
    hidden_pre = xt @ W["W_enc"] + W["b_enc"]
    if arch == "standard":
        return torch.relu(hidden_pre), out
    if arch == "jumprelu":
        return torch.relu(hidden_pre) * (hidden_pre > W["threshold"]).float(), out
    if arch == "topk":
        if cfg.get("rescale_acts_by_decoder_norm"):
            hidden_pre = hidden_pre * W["W_dec"].norm(dim=-1)
        top = torch.topk(hidden_pre, k=cfg["k"], dim=-1)
        res = torch.zeros_like(hidden_pre)
        return res.scatter(-1, top.indices, torch.relu(top.values)), out
    if arch in ("batchtopk", "matryoshka_batchtopk"):
        # inference: JumpReLU with the learned scalar threshold (BatchTopK saves as JumpReLU)
        if cfg.get("rescale_acts_by_decoder_norm"):
            hidden_pre = hidden_pre * W["W_dec"].norm(dim=-1)
        thr = W["threshold"] if "threshold" in W else W["topk_threshold"]
        return torch.relu(hidden_pre) * (hidden_pre > thr).float(), out
    raise ValueError(arch)


def saelens_decode(cfg, W, f, out):
    W_dec = W["W_dec"]
    # read_sae_components_from_disk renames a non-trivial `scaling_factor` to finetuning_scaling_factor
    sf = W.get("finetuning_scaling_factor", W.get("scaling_factor"))
    if sf is not None:
        f = f * sf
    if cfg.get("rescale_acts_by_decoder_norm"):
        f = f * (1 / W_dec.norm(dim=-1))
    return out(f @ W_dec + W["b_dec"])


def dl_encode(cls, sd, x):
    if cls == "AutoEncoder":
        return torch.relu((x - sd["bias"]) @ sd["encoder.weight"].T + sd["encoder.bias"])
    if cls == "AutoEncoderNew":
        return torch.relu(x @ sd["encoder.weight"].T + sd["encoder.bias"])
    if cls == "GatedAutoEncoder":
        x_enc = (x - sd["decoder_bias"]) @ sd["encoder.weight"].T
        f_gate = ((x_enc + sd["gate_bias"]) > 0).float()
        f_mag = torch.relu(sd["r_mag"].exp() * x_enc + sd["mag_bias"])
        return f_gate * f_mag
    if cls == "JumpReluAutoEncoder":
        pre = x @ sd["W_enc"] + sd["b_enc"]
        return torch.relu(pre * (pre > sd["threshold"]))
    if cls == "AutoEncoderTopK":
        post = torch.relu((x - sd["b_dec"]) @ sd["encoder.weight"].T + sd["encoder.bias"])
        top = post.topk(int(sd["k"]), sorted=False, dim=-1)
        return torch.zeros_like(post).scatter(-1, top.indices, top.values)
    if cls == "BatchTopKSAE":
        post = torch.relu((x - sd["b_dec"]) @ sd["encoder.weight"].T + sd["encoder.bias"])
        return post * (post > sd["threshold"])
    if cls == "MatryoshkaBatchTopKSAE":
        post = torch.relu((x - sd["b_dec"]) @ sd["W_enc"] + sd["b_enc"])
        return post * (post > sd["threshold"])
    raise ValueError(cls)


def dl_decode(cls, sd, f):
    if cls == "AutoEncoder":
        return f @ sd["decoder.weight"].T + sd["bias"]
    if cls == "AutoEncoderNew":
        return f @ sd["decoder.weight"].T + sd["decoder.bias"]
    if cls == "GatedAutoEncoder":
        return f @ sd["decoder.weight"].T + sd["decoder_bias"]
    if cls in ("JumpReluAutoEncoder", "MatryoshkaBatchTopKSAE"):
        return f @ sd["W_dec"] + sd["b_dec"]
    return f @ sd["decoder.weight"].T + sd["b_dec"]


def dl_normalize_decoder(sd):
    """AutoEncoder.normalize_decoder (dictionary.py): skip when allclose(norms, 1)."""
    sd = {k: v.clone() for k, v in sd.items()}
    norms = torch.norm(sd["decoder.weight"], dim=0)
    if torch.allclose(norms, torch.ones_like(norms)):
        return sd
    sd["decoder.weight"] = sd["decoder.weight"] / norms
    sd["encoder.weight"] = sd["encoder.weight"] * norms[:, None]
    sd["encoder.bias"] = sd["encoder.bias"] * norms
    return sd


# ---------------------------------------------------------------- references

def inputs(seed, scale=1.0):
    r = gen(seed)
    return r(N, D, scale=scale), r(N, F)


def reference(encode, decode, x, cot):
    """encode: x -> features (sfc convention), decode: f -> x̂ (sfc's linear decoder)."""
    f = encode(x)
    xhat = decode(f)
    xg = x.clone().requires_grad_(True)
    (encode(xg) * cot).sum().backward()
    vjp = xg.grad
    fd = f.detach()
    ids = []
    for n in range(N):
        active = [j for j in range(F) if fd[n, j] != 0]
        ids.append(active[n % len(active)] if active and n % 2 == 0 else (n * 5 + 3) % F)
    grads = []
    for n in range(N):
        xi = x[n:n + 1].clone().requires_grad_(True)
        xa = torch.cat([x[:n], xi, x[n + 1:]])
        encode(xa)[n, ids[n]].backward()
        grads.append(xi.grad[0])
    return {
        "x": rows(x), "features": rows(fd), "decode": rows(xhat.detach()),
        "cot": rows(cot), "vjp": rows(vjp),
        "feature_ids": ids, "feature_grads": rows(torch.stack(grads)),
    }


def emit(name, folder_writer, ref, expect, options=None, loader=None):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    folder_writer(d)
    n_active = sum(1 for r in ref["features"] for v in r if v != 0)
    assert n_active > 0, name
    write_json(os.path.join(OUT, name + ".ref.json"), {
        "case": name, "loader": loader, "options": options or {}, "expect": expect, **ref,
    })


# ---------------------------------------------------------------- SAELens cases

def saelens_case(name, arch, seed, hook, extra_cfg=None, extra_w=None, options=None, flat_cfg=None, transform=None, scale=1.0):
    W = base_weights(seed)
    if arch == "gated":
        del W["b_enc"]
        r = gen(seed + 1)
        W.update({"b_gate": r(F, scale=0.1), "b_mag": r(F, scale=0.1), "r_mag": r(F, scale=0.3)})
    W.update(extra_w(W) if extra_w else {})
    cfg = {"architecture": arch, "d_in": D, "d_sae": F, "dtype": "float32", "device": "cpu",
           "apply_b_dec_to_input": True, "normalize_activations": "none", "reshape_activations": "none",
           "metadata": {"sae_lens_version": "6.5.1", "sae_lens_training_version": "6.5.1",
                        "model_name": "tiny", "hook_name": hook, "hook_head_index": None, "prepend_bos": True}}
    cfg.update(extra_cfg or {})
    x, cot = inputs(seed + 100, scale)
    run_W = transform(cfg, W) if transform else W

    def enc(xx):
        f, out = saelens_encode(cfg, run_W, xx)
        return f

    def dec(f):
        return saelens_decode({**cfg, "normalize_activations": "none"}, run_W, f, lambda y: y)

    encode, decode = enc, dec
    if cfg["normalize_activations"] in ("constant_norm_rescale", "layer_norm"):
        # sfc: features in raw units φ = f·s(x), bias-free linear decoder φ·W_dec.
        def scale_of(xx):
            if cfg["normalize_activations"] == "constant_norm_rescale":
                return xx.norm(dim=-1, keepdim=True) / (D ** 0.5)
            return (xx - xx.mean(dim=-1, keepdim=True)).std(dim=-1, keepdim=True)

        encode = lambda xx: enc(xx) * scale_of(xx)
        decode = lambda phi: phi @ run_W["W_dec"]
    ref = reference(encode, decode, x, cot)
    if cfg["normalize_activations"] in ("constant_norm_rescale", "layer_norm"):
        f, out = saelens_encode(cfg, run_W, x)
        ref["saelens_sae_out"] = rows(saelens_decode(cfg, run_W, f, out))

    def write(d):
        write_json(os.path.join(d, "cfg.json"), flat_cfg if flat_cfg is not None else cfg)
        write_safetensors(os.path.join(d, "sae_weights.safetensors"), W)

    emit(name, write, ref, {"architecture": {"standard": "relu"}.get(arch, arch), "dIn": D, "dSae": F, "hook": hook}, options, "saelens")


def fold_scaling_factor(s):
    def t(cfg, W):
        W = dict(W)
        W["W_enc"] = W["W_enc"] * s
        W["W_dec"] = W["W_dec"] / s
        W["b_dec"] = W["b_dec"] / s
        return W
    return t


def make_saelens():
    thr = lambda W: {"threshold": torch.rand(F, generator=torch.Generator().manual_seed(5)) * 0.4}
    saelens_case("saelens_standard", "standard", 1, "blocks.0.hook_resid_post")
    saelens_case("saelens_standard_nocentre", "standard", 2, "blocks.1.hook_mlp_out", {"apply_b_dec_to_input": False})
    saelens_case("saelens_jumprelu", "jumprelu", 3, "blocks.1.hook_resid_post", {"apply_b_dec_to_input": False}, thr)
    saelens_case("saelens_topk", "topk", 4, "blocks.0.hook_attn_out", {"k": 4})
    saelens_case("saelens_topk_rescale", "topk", 5, "gpt_neox.layers.1.attention", {"k": 5, "rescale_acts_by_decoder_norm": True},
                 lambda W: {"W_dec": W["W_dec"] * (0.5 + torch.arange(F).float()[:, None] / F)})
    saelens_case("saelens_gated", "gated", 6, "hook_embed")
    saelens_case("saelens_batchtopk", "batchtopk", 7, "blocks.0.hook_mlp_out", {"k": 4},
                 lambda W: {"topk_threshold": torch.tensor(0.15)})
    saelens_case("saelens_matryoshka", "matryoshka_batchtopk", 8, "blocks.1.hook_attn_out", {"k": 4, "matryoshka_widths": [4, 10, 16]},
                 lambda W: {"threshold": torch.full((F,), 0.1)})
    saelens_case("saelens_constant_norm", "standard", 9, "blocks.0.hook_resid_post", {"normalize_activations": "constant_norm_rescale"}, scale=3.0)
    saelens_case("saelens_layer_norm", "jumprelu", 10, "blocks.1.hook_resid_post", {"normalize_activations": "layer_norm"}, thr, scale=2.0)
    saelens_case("saelens_expected_average", "standard", 11, "blocks.1.hook_mlp_out", {"normalize_activations": "expected_average_only_in"},
                 options={"scalingFactor": 1.7}, transform=fold_scaling_factor(1.7))
    saelens_case("saelens_finetuning_scale", "standard", 12, "blocks.0.hook_resid_post", {"finetuning_scaling_factor": True},
                 lambda W: {"scaling_factor": 0.5 + torch.rand(F, generator=torch.Generator().manual_seed(3))})
    # pre-6.0 flat layout: hook_point, activation_fn_str topk with k in activation_fn_kwargs, boolean normalisation
    flat = {"d_in": D, "d_sae": F, "dtype": "float32", "device": "cpu", "model_name": "tiny", "hook_point": "blocks.1.hook_resid_post",
            "hook_point_layer": 1, "hook_point_head_index": None, "activation_fn_str": "topk", "activation_fn_kwargs": {"k": 3},
            "apply_b_dec_to_input": True, "normalize_activations": False, "context_size": 128, "sae_lens_training_version": "3.13.0"}
    saelens_case("saelens_pre6_topk", "topk", 13, "blocks.1.hook_resid_post", {"k": 3}, flat_cfg=flat)


# ---------------------------------------------------------------- dictionary_learning cases

def dl_case(name, cls, seed, sd, config=True, backup=False, normalize=True, k=None, submodule="resid_0"):
    x, cot = inputs(seed + 100)
    run_sd = dl_normalize_decoder(sd) if (cls == "AutoEncoder" and normalize) else sd
    encode = lambda xx: dl_encode(cls, run_sd, xx)
    decode = lambda f: dl_decode(cls, run_sd, f)
    ref = reference(encode, decode, x, cot)
    if cls == "AutoEncoder":
        ref["features_raw"] = rows(dl_encode(cls, sd, x))

    def write(d):
        obj = {"ae": sd, "optimizer": {"state": {}, "param_groups": [{"lr": 1e-3}]}, "step": 10} if backup else sd
        torch.save(obj, os.path.join(d, "ae.pt"))
        if config:
            trainer = {"dict_class": cls, "trainer_class": "Trainer", "activation_dim": D, "dict_size": F,
                       "layer": 0, "lm_name": "tiny", "submodule_name": submodule, "seed": seed}
            if k is not None:
                trainer["k"] = k
            write_json(os.path.join(d, "config.json"), {"trainer": trainer, "buffer": {"d_submodule": D}})

    arch = {"AutoEncoder": "relu", "AutoEncoderNew": "relu", "GatedAutoEncoder": "gated", "JumpReluAutoEncoder": "jumprelu",
            "AutoEncoderTopK": "topk", "BatchTopKSAE": "batchtopk", "MatryoshkaBatchTopKSAE": "matryoshka_batchtopk"}[cls]
    emit(name, write, ref, {"architecture": arch, "dIn": D, "dSae": F, "hook": submodule if config else None, "class": cls},
         {} if normalize else {"normalizeDecoder": False}, "dictionary-learning")


def make_dictionary_learning():
    w = base_weights(21, unit_decoder=False)
    ae = {"bias": w["b_dec"], "encoder.weight": w["W_enc"].T.contiguous(), "encoder.bias": w["b_enc"],
          "decoder.weight": w["W_dec"].T.contiguous()}
    dl_case("dl_autoencoder", "AutoEncoder", 21, ae)
    dl_case("dl_autoencoder_raw", "AutoEncoder", 21, ae, normalize=False)
    dl_case("dl_autoencoder_noconfig", "AutoEncoder", 21, ae, config=False)

    # a transposed view (decoder.weight is W_dec.T of a [F, D] tensor: strides (1, D)) and two
    # vectors that share one storage at different offsets
    w = base_weights(22, unit_decoder=False)
    shared = torch.cat([w["b_enc"], w["b_dec"]])
    view_sd = {"bias": shared[F:], "encoder.weight": w["W_enc"].T.contiguous(), "encoder.bias": shared[:F],
               "decoder.weight": w["W_dec"].clone().T}
    assert not view_sd["decoder.weight"].is_contiguous()
    assert view_sd["bias"].storage().data_ptr() == view_sd["encoder.bias"].storage().data_ptr()
    dl_case("dl_autoencoder_views", "AutoEncoder", 22, view_sd)
    dl_case("dl_autoencoder_backup", "AutoEncoder", 23, {k: v.clone() for k, v in ae.items()}, backup=True)

    w = base_weights(24)
    dl_case("dl_autoencoder_new", "AutoEncoderNew", 24, {"encoder.weight": w["W_enc"].T.contiguous(), "encoder.bias": w["b_enc"],
                                                         "decoder.weight": w["W_dec"].T.contiguous(), "decoder.bias": w["b_dec"]})
    w = base_weights(25)
    r = gen(26)
    dl_case("dl_gated", "GatedAutoEncoder", 25, {"decoder_bias": w["b_dec"], "encoder.weight": w["W_enc"].T.contiguous(),
                                                  "r_mag": r(F, scale=0.3), "gate_bias": r(F, scale=0.1), "mag_bias": r(F, scale=0.1),
                                                  "decoder.weight": w["W_dec"].T.contiguous()}, submodule="attn_1")
    w = base_weights(27)
    dl_case("dl_jumprelu", "JumpReluAutoEncoder", 27, {**w, "threshold": torch.rand(F, generator=torch.Generator().manual_seed(9)) * 0.4},
            submodule="mlp_1")
    w = base_weights(28)
    topk_sd = {"k": torch.tensor(4, dtype=torch.int), "threshold": torch.tensor(0.2, dtype=torch.float32),
               "encoder.weight": w["W_enc"].T.contiguous(), "encoder.bias": w["b_enc"], "decoder.weight": w["W_dec"].T.contiguous(),
               "b_dec": w["b_dec"]}
    dl_case("dl_topk", "AutoEncoderTopK", 28, topk_sd)
    dl_case("dl_batchtopk", "BatchTopKSAE", 28, topk_sd)
    w = base_weights(29)
    dl_case("dl_matryoshka", "MatryoshkaBatchTopKSAE", 29, {**w, "k": torch.tensor(4, dtype=torch.int), "threshold": torch.tensor(0.1),
                                                           "group_sizes": torch.tensor([4, 6, 6])}, submodule="embed")


# ---------------------------------------------------------------- Gemma Scope

def make_gemma_scope():
    for name, seed, compressed in (("gemma_scope", 31, False), ("gemma_scope_deflated", 32, True)):
        w = base_weights(seed)
        w["threshold"] = torch.rand(F, generator=torch.Generator().manual_seed(seed)) * 0.4
        x, cot = inputs(seed + 100)
        encode = lambda xx, w=w: torch.relu(xx @ w["W_enc"] + w["b_enc"]) * ((xx @ w["W_enc"] + w["b_enc"]) > w["threshold"]).float()
        decode = lambda f, w=w: f @ w["W_dec"] + w["b_dec"]
        ref = reference(encode, decode, x, cot)

        def write(d, w=w, compressed=compressed):
            arrays = {k: v.numpy().astype(np.float32) for k, v in w.items()}
            arrays["W_dec"] = np.asfortranarray(arrays["W_dec"])  # a Fortran-order .npy inside
            (np.savez_compressed if compressed else np.savez)(os.path.join(d, "params.npz"), **arrays)

        emit(name, write, ref, {"architecture": "jumprelu", "dIn": D, "dSae": F, "hook": None}, None, "gemma-scope")


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    make_saelens()
    make_dictionary_learning()
    make_gemma_scope()
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(OUT) for f in fs)
    print(f"wrote {OUT}: {total / 1024:.0f} KiB")
    assert total < 1024 * 1024


if __name__ == "__main__":
    main()
