"""feature-circuits circuits of a Gemma 2 model, saved as the reference saves them, plus steering references.

Dev tool (Debian's PyTorch; re-executes itself with /usr/bin/python3). Writes to
packages/dictionaries/test-data/formats/circuits/:

  gemma2-a_agreement_n5_aggsum_node0.02084.pt
      the discovery circuit of fixtures/models/gemma2-a with its SAEs (nodes and edges from the
      float64 reference in fixtures/models/gemma2-a/edges/ig_sum.json), in circuit.py's save format:
      torch.save({"examples", "nodes": {sub: SparseAct(act [F], resc [1])}, "edges": {up: {down: sparse [F_D+1, F_U+1]}}})
      with activation_utils.SparseAct as the pickled class; no `embed` (Gemma: include_embed=False).
  gemma2-a_agreement_n5_aggsum_neurons_nodeall.pt
      the same run with identity dictionaries (circuit.py --use_neurons, dictionary_loading_utils'
      IdentityDict: attn_l = z is heads * head_dim wide), nodes only (--nodes_only: edges None),
      IG node effects computed here in float64: for each submodule, x_M := (1 - a) x_clean + a x_patch,
      a = k / 10, k = 0..9, mean gradient times (x_patch - x_clean), summed over positions, mean over
      examples; the error node is exactly 0 (an identity reconstructs x).
  gemma2-a_steer.json
      for each circuit, its three largest |node effects| (errors excluded) and the metric
      logit[last, patch answer] - logit[last, clean answer] of the 5 prompts before and after scaling
      those features by 0 in one forward (submodules in order, each edit on its current input:
      x_M := x_M + sum_k (0 - f_k) W_dec[k], f = enc(x_M); for neurons x_M[..., k] := 0).

    python3 tools/refgen/make_fc_gemma_circuits.py
"""

import os
import sys

try:
    import torch
except ImportError:
    if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise SystemExit("make_fc_gemma_circuits.py needs PyTorch: apt-get install python3-torch")

import json

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_dict_files as mdf  # noqa: E402  (SparseAct stand-in, storages_on, save_torch)
from make_models import decoder, read_safetensors  # noqa: E402

ROOT = mdf.ROOT
MODEL = os.path.join(ROOT, "fixtures", "models", "gemma2-a")
EDGES = os.path.join(MODEL, "edges")
OUT = os.path.join(ROOT, "packages", "dictionaries", "test-data", "formats", "circuits")
STEPS = 10
TOP_K = 3
FC_DIR = lambda sub: {"attn": "attn_out_layer", "mlp": "mlp_out_layer", "resid": "resid_out_layer"}[sub.split("_")[0]] + sub.split("_")[1]  # noqa: E731


def load():
    with open(os.path.join(MODEL, "config.json")) as f:
        cfg = json.load(f)
    m = decoder(cfg, read_safetensors(os.path.join(MODEL, "model.safetensors")), torch.float64)
    with open(os.path.join(EDGES, "data.json")) as f:
        data = json.load(f)
    saes = {}
    for sub in m.submodules:
        w = read_safetensors(os.path.join(EDGES, "saes", FC_DIR(sub), "sae_weights.safetensors"))
        saes[sub] = {k: v.double() for k, v in w.items()}
    return m, data, saes


def metric(m, data, ids, hooks=None):
    logits = m.run(ids, hooks)[0][:, -1, :]
    pa = torch.tensor(data["patch_answer"])[:, None]
    ca = torch.tensor(data["clean_answer"])[:, None]
    return (logits.gather(1, pa) - logits.gather(1, ca))[:, 0]


def encode(w, x):
    return torch.relu((x - w["b_dec"]) @ w["W_enc"] + w["b_enc"])


def sae_circuit(data):
    """The reference's ig_sum.json as circuit.py saves it (edges above the reference's entry floor, sparse COO)."""
    with open(os.path.join(EDGES, "ig_sum.json")) as f:
        ref = json.load(f)
    nodes = {sub: mdf.SparseAct(act=torch.tensor(ref["nodes"][sub]["act"], dtype=torch.float32),
                                resc=torch.tensor([ref["nodes"][sub]["err"]], dtype=torch.float32)) for sub in ref["submodules"]}
    edges = {}
    for up, downs in ref["edges"].items():
        for down, e in downs.items():
            if down == "y":
                edges.setdefault(up, {})["y"] = torch.tensor(e["dense"], dtype=torch.float32).to_sparse().coalesce()
                continue
            shape = (ref["d_sae"][down] + 1, ref["d_sae"][up] + 1)
            idx = torch.tensor([x[:2] for x in e["entries"]], dtype=torch.int64).reshape(-1, 2).t()
            val = torch.tensor([x[2] for x in e["entries"]], dtype=torch.float32)
            edges.setdefault(up, {})[down] = torch.sparse_coo_tensor(idx, val, shape).coalesce()
    examples = [{"clean_prefix": c, "patch_prefix": p, "clean_answer": ca, "patch_answer": pa}
                for c, p, ca, pa in zip(data["clean_text"], data["patch_text"], data["clean_answer_text"], data["patch_answer_text"])]
    return {"examples": examples, "nodes": nodes, "edges": edges}, ref["node_threshold"]


def neuron_effects(m, data):
    """IG node effects with identity dictionaries (aggregation sum), float64."""
    clean, patch = torch.tensor(data["clean_ids"]), torch.tensor(data["patch_ids"])
    vals = {}

    def grab(store):
        return {s: (lambda x, s=s: store.__setitem__(s, x.detach()) or x) for s in m.submodules}
    with torch.no_grad():
        xc, xp = {}, {}
        m.run(clean, grab(xc))
        m.run(patch, grab(xp))
    B = clean.shape[0]
    for sub in m.submodules:
        grads = torch.zeros_like(xc[sub])
        for k in range(STEPS):
            a = k / STEPS
            x = ((1 - a) * xc[sub] + a * xp[sub]).requires_grad_()
            metric(m, data, clean, {sub: lambda _, x=x: x}).sum().backward()
            grads += x.grad
        vals[sub] = ((grads / STEPS) * (xp[sub] - xc[sub])).sum(1).mean(0)
    assert B == data["n_examples"]
    return vals


def top_features(nodes, k=TOP_K):
    flat = [(abs(float(v)), sub, i) for sub, sa in nodes.items() for i, v in enumerate(sa.act.tolist()) if v != 0]
    flat.sort(key=lambda t: -t[0])
    return [(sub, i) for _, sub, i in flat[:k]]


def steered(m, data, feats, saes=None):
    """Metric after scaling `feats` by 0, each submodule edited on its current input, in forward order."""
    clean = torch.tensor(data["clean_ids"])
    by = {}
    for sub, i in feats:
        by.setdefault(sub, []).append(i)

    def edit(sub, x):
        idx = torch.tensor(by[sub])
        if saes is None:
            y = x.clone()
            y[..., idx] = 0
            return y
        w = saes[sub]
        f = encode(w, x)[..., idx]
        return x + (0 - f) @ w["W_dec"][idx]
    with torch.no_grad():
        return metric(m, data, clean, {s: (lambda x, s=s: edit(s, x)) for s in by}).tolist()


def main():
    os.makedirs(OUT, exist_ok=True)
    m, data, saes = load()
    circuit, node_threshold = sae_circuit(data)
    with mdf.storages_on("cuda:0"):
        mdf.save_torch(circuit, os.path.join(OUT, f"gemma2-a_agreement_n5_aggsum_node{node_threshold}.pt"))
    effects = neuron_effects(m, data)
    neurons = {sub: mdf.SparseAct(act=v.float(), resc=torch.zeros(1)) for sub, v in effects.items()}
    with mdf.storages_on("cuda:0"):
        mdf.save_torch({"examples": circuit["examples"], "nodes": neurons, "edges": None},
                       os.path.join(OUT, "gemma2-a_agreement_n5_aggsum_neurons_nodeall.pt"))
    with torch.no_grad():
        before = metric(m, data, torch.tensor(data["clean_ids"])).tolist()
    out = {"generator": "tools/refgen/make_fc_gemma_circuits.py", "torch": torch.__version__, "compute_dtype": "float64",
           "model": "fixtures/models/gemma2-a", "metric_before": before}
    for name, nodes, sae in (("saes", circuit["nodes"], saes), ("neurons", neurons, None)):
        feats = top_features(nodes)
        out[name] = {"features": [f"{s}/{i}" for s, i in feats], "effects": [float(nodes[s].act[i]) for s, i in feats],
                     "metric_after": steered(m, data, feats, sae)}
    out["neurons"]["node_effects"] = {sub: v.tolist() for sub, v in effects.items()}
    with open(os.path.join(OUT, "gemma2-a_steer.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(json.dumps({k: v for k, v in out.items() if k != "neurons"} | {"neurons": {k: v for k, v in out["neurons"].items() if k != "node_effects"}}, indent=1))


if __name__ == "__main__":
    main()
