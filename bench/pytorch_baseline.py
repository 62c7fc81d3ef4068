#!/usr/bin/env python3
"""PyTorch baseline for sfc's benchmark (dev tool, not shipped, never part of `npm test`).

feature-circuits' math (attribution.py `_pe_attrib` / `_pe_ig` / `_pe_exact` / `jvp`,
ablation.py `run_with_ablations`, HEAD) ported to plain PyTorch, on exactly the model, SAEs and
token ids of a workload that bench/run.ts generated (bench/cache/<scale>/), timing the same
stages as the sfc worker and printing one JSON result (bench/measure.ts `SideResult`).

The port keeps the reference's structure and cost, without nnsight: every forward is the full
model with all logits (the reference reads `embed_out.output`), IG runs steps × examples rows
through the whole model and differentiates w.r.t. the interpolated SAE features and errors,
exact runs one full forward per patched feature and per error position, and jvp backpropagates
once per downstream node (`edges-loop`), or once per (position, feature) serving every example
whose node it is (`edges`). Gradients follow the intended semantics that sfc implements
(docs/concepts.md, “Parity”): every SAE splice passes the true gradient, upstream error nodes get theirs.

Needs Debian's PyTorch with OpenBLAS (otherwise the reference BLAS is ~13x slower):
    apt-get install -y python3-torch libopenblas0-pthread
    /usr/bin/python3 bench/pytorch_baseline.py --workload bench/cache/small --runs 1
"""

import os
import sys

# Idle OpenMP threads sleep instead of spinning: on a shared machine (other processes on the
# cores) spinning workers made small ops 10-100x slower. Must be set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    import torch  # noqa: F401
except ImportError:  # a pyenv python3 cannot see Debian's torch
    if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise SystemExit("pytorch_baseline.py needs PyTorch: apt-get install python3-torch libopenblas0-pthread")

import argparse
import json
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "refgen"))
from make_models import activation, causal_softmax, layer_norm, read_safetensors, rope_init, rotate_half  # noqa: E402
import decoders  # noqa: E402

NODE_THRESHOLD = 0.1
IG_STEPS = 10
EVAL_THRESHOLD = 0.1
# Stages whose runs all take less than FAST_SECONDS get at least FAST_RUNS runs (as bench/scales.ts).
FAST_SECONDS = 0.5
FAST_RUNS = 10
STAGES = ["forward", "sae-forward", "attrib", "ig", "exact", "edges", "edges-loop", "eval"]


# ---------------------------------------------------------------- memory

def status_kib(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def rss_mib():
    return (status_kib("VmRSS") or 0) / 1024


def peak_mib():
    v = status_kib("VmHWM")
    if v is None:
        import resource
        v = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return v / 1024


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# ---------------------------------------------------------------- model (HF GPT-NeoX, parallel residual)

class NeoX:
    """Hugging Face GPT-NeoX forward (make_models.neox_forward) with a hook at every submodule:
    hook(name, x) returns the value the rest of the model sees (nnsight's `submodule.output = ...`)."""

    def __init__(self, cfg, P):
        self.cfg = cfg
        self.d = cfg["hidden_size"]
        self.H = cfg["num_attention_heads"]
        self.hd = self.d // self.H
        self.rot = int(self.hd * cfg.get("rotary_pct", 0.25))
        self.base = cfg.get("rotary_emb_base", 10000)
        self.eps = cfg["layer_norm_eps"]
        self.act = activation(cfg.get("hidden_act", "gelu"))
        self.L = cfg["num_hidden_layers"]
        assert cfg.get("use_parallel_residual", True), "the benchmark model has a parallel residual"
        self.P = P
        self.submodules = ["embed"] + [f"{r}_{l}" for l in range(self.L) for r in ("attn", "mlp", "resid")]

    def rotary(self, s):
        inv_freq = 1.0 / (self.base ** (torch.arange(0, self.rot, 2, dtype=torch.int64).float() / self.rot))
        freqs = torch.outer(torch.arange(s, dtype=torch.int64).float(), inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos(), emb.sin()

    def forward(self, ids, hook=None):
        P, d, H, hd, rot = self.P, self.d, self.H, self.hd, self.rot
        hook = hook or (lambda name, x: x)
        b, s = ids.shape
        cos, sin = self.rotary(s)
        x = hook("embed", P["gpt_neox.embed_in.weight"][ids])
        for l in range(self.L):
            pre = f"gpt_neox.layers.{l}."
            h = layer_norm(x, P[pre + "input_layernorm.weight"], P[pre + "input_layernorm.bias"], self.eps)
            qkv = torch.nn.functional.linear(h, P[pre + "attention.query_key_value.weight"], P[pre + "attention.query_key_value.bias"])
            qkv = qkv.view(b, s, H, 3 * hd)
            q = qkv[..., :hd].permute(0, 2, 1, 3)
            k = qkv[..., hd:2 * hd].permute(0, 2, 1, 3)
            v = qkv[..., 2 * hd:].permute(0, 2, 1, 3)
            q = torch.cat((q[..., :rot] * cos + rotate_half(q[..., :rot]) * sin, q[..., rot:]), dim=-1)
            k = torch.cat((k[..., :rot] * cos + rotate_half(k[..., :rot]) * sin, k[..., rot:]), dim=-1)
            w = causal_softmax(torch.matmul(q, k.transpose(-1, -2)) * (hd ** -0.5))
            o = torch.matmul(w, v).permute(0, 2, 1, 3).reshape(b, s, d)
            attn = hook(f"attn_{l}", torch.nn.functional.linear(o, P[pre + "attention.dense.weight"], P[pre + "attention.dense.bias"]))
            z = layer_norm(x, P[pre + "post_attention_layernorm.weight"], P[pre + "post_attention_layernorm.bias"], self.eps)
            z = torch.nn.functional.linear(z, P[pre + "mlp.dense_h_to_4h.weight"], P[pre + "mlp.dense_h_to_4h.bias"])
            m = hook(f"mlp_{l}", torch.nn.functional.linear(self.act(z), P[pre + "mlp.dense_4h_to_h.weight"], P[pre + "mlp.dense_4h_to_h.bias"]))
            x = hook(f"resid_{l}", m + attn + x)
        x = layer_norm(x, P["gpt_neox.final_layer_norm.weight"], P["gpt_neox.final_layer_norm.bias"], self.eps)
        return torch.nn.functional.linear(x, P["embed_out.weight"])

    def inputs_of(self, name):
        """Direct inputs of a submodule's segment (sfc's edge pairs)."""
        role, l = name.split("_")
        l = int(l)
        prev = "embed" if l == 0 else f"resid_{l - 1}"
        return [prev, f"attn_{l}", f"mlp_{l}"] if role == "resid" else [prev]


class Gemma:
    """Gemma 2 (tools/refgen/decoders.py, transformers' math) with the same hook(name, x) interface:
    attn_l is z (o_proj's input), mlp_l the post-feedforward-norm output, resid_l the layer output."""

    def __init__(self, cfg, P):
        self.dec = decoders.Decoder(cfg, P, torch.float32, rope_init)
        self.submodules = self.dec.submodules

    def forward(self, ids, hook=None):
        hooks = {n: (lambda x, n=n: hook(n, x)) for n in self.submodules} if hook else None
        return self.dec.run(ids, hooks)[0]

    def inputs_of(self, name):
        """Direct inputs of a submodule's segment as sfc chains Gemma (attn_l stands for its o_proj output)."""
        role, l = name.split("_")
        l = int(l)
        prev = [f"resid_{l - 1}"] if l > 0 else []
        return {"attn": prev, "mlp": prev + [f"attn_{l}"], "resid": prev + [f"attn_{l}", f"mlp_{l}"]}[role]


def read_checkpoint(mdir):
    """model.safetensors, or the shards model.safetensors.index.json names (upcast to fp32)."""
    index = os.path.join(mdir, "model.safetensors.index.json")
    if not os.path.exists(index):
        return read_safetensors(os.path.join(mdir, "model.safetensors"))
    with open(index) as f:
        files = sorted(set(json.load(f)["weight_map"].values()))
    P = {}
    for name in files:
        P.update(read_safetensors(os.path.join(mdir, name)))
    return P


class SAE:
    """SAELens `standard` with apply_b_dec_to_input: f = relu((x − b_dec) W_enc + b_enc), x̂ = f W_dec + b_dec;
    `jumprelu` (Gemma Scope, no input centring): f = pre · 1[pre > threshold], pre = x W_enc + b_enc."""

    def __init__(self, path):
        w = read_safetensors(os.path.join(path, "sae_weights.safetensors"))
        with open(os.path.join(path, "cfg.json")) as f:
            cfg = json.load(f)
        self.W_enc, self.b_enc, self.W_dec, self.b_dec = w["W_enc"], w["b_enc"], w["W_dec"], w["b_dec"]
        self.threshold = w["threshold"] if cfg.get("architecture") == "jumprelu" else None
        self.centre = cfg.get("apply_b_dec_to_input", True)

    def encode(self, x):
        pre = ((x - self.b_dec) if self.centre else x) @ self.W_enc + self.b_enc
        if self.threshold is not None:
            return torch.relu(pre) * (pre > self.threshold)
        return torch.relu(pre)

    def decode(self, f):
        return f @ self.W_dec + self.b_dec

    def splice(self, x):
        """x = dec(f) + r with f and r as leaves whose .grad the backward fills: returns (dec(f) + r, f, r)."""
        with torch.no_grad():
            f = self.encode(x)
        f.requires_grad_()
        x_hat = self.decode(f)
        r = (x - x_hat).detach().requires_grad_()
        return x_hat + r, f, r


# ---------------------------------------------------------------- the reference's algorithms

class Bench:
    def __init__(self, workload, examples):
        with open(os.path.join(workload, "workload.json")) as f:
            self.manifest = json.load(f)
        mdir = os.path.join(workload, self.manifest["model"]["dir"])
        with open(os.path.join(mdir, "config.json")) as f:
            cfg = json.load(f)
        P = read_checkpoint(mdir)
        self.model = Gemma(cfg, P) if cfg["model_type"] == "gemma2" else NeoX(cfg, P)
        del P
        sdir = os.path.join(workload, self.manifest["saes"]["dir"])
        # The submodules with SAEs (gemma2 scales: the resid_l only); the others are not spliced.
        self.subs = [n for n in self.model.submodules if n in self.manifest["saes"]["submodules"]]
        self.saes = {name: SAE(os.path.join(sdir, name)) for name in self.subs}
        with open(os.path.join(workload, self.manifest["data"]["tokens"])) as f:
            tok = json.load(f)
        self.clean = torch.tensor(tok["clean"][:examples])
        self.patch = torch.tensor(tok["patch"][:examples])
        self.clean_ans = torch.tensor(tok["clean_answer"][:examples])
        self.patch_ans = torch.tensor(tok["patch_answer"][:examples])
        self.B, self.S = self.clean.shape
        scale = self.manifest["scale"]
        self.exact_sub = f"resid_{(scale['nLayers'] - 1) // 2}"
        self.exact_features = scale["exactFeatures"]
        self.ig = None  # (effects, grads, deltas) of the last ig run, for edges and eval

    def metric(self, logits, reps=1):
        """feature-circuits' metric_fn: logit[last, patch answer] − logit[last, clean answer], per row."""
        last = logits[:, -1, :]
        return last.gather(1, self.patch_ans.repeat(reps)[:, None])[:, 0] - last.gather(1, self.clean_ans.repeat(reps)[:, None])[:, 0]

    def states(self, ids, subs):
        """Unmodified forward; SAE state (f, r) of each submodule in `subs`."""
        out = {}

        def hook(name, x):
            if name in subs:
                f = self.saes[name].encode(x)
                out[name] = (f, x - self.saes[name].decode(f))
            return x
        with torch.no_grad():
            logits = self.model.forward(ids, hook)
        return out, self.metric(logits)

    # -- stages

    def forward(self):
        with torch.no_grad():
            logits = self.model.forward(self.clean)
        return {"check": {"metricClean": self.metric(logits).mean().item()}}

    def sae_forward(self):
        def hook(name, x):
            if name not in self.saes:
                return x
            sae = self.saes[name]
            x_hat = sae.decode(sae.encode(x))
            return x_hat + (x - x_hat)
        with torch.no_grad():
            logits = self.model.forward(self.clean, hook)
        return {"check": {"metricClean": self.metric(logits).mean().item()}}

    def effect_mass(self, effects):
        """Σ |aggregated effects| (sum over positions, mean over examples) over every submodule."""
        return sum(act.sum(1).mean(0).abs().sum().item() + res.sum(1).mean(0).abs().item() for act, res in effects.values())

    def attrib(self):
        leaves = {}

        def hook(name, x):
            if name not in self.saes:
                return x
            spliced, f, res = self.saes[name].splice(x)
            leaves[name] = (f, res)
            return spliced + (x - x.detach())  # value x; the true gradient flows on upstream
        m_clean = self.metric(self.model.forward(self.clean, hook))
        m_clean.sum().backward()
        patch, m_patch = self.states(self.patch, set(self.subs))
        effects = {}
        for name, (f, res) in leaves.items():
            fp, rp = patch[name]
            effects[name] = ((fp - f.detach()) * f.grad, ((rp - res.detach()) * res.grad).sum(-1))
        return {"check": {"effectMass": self.effect_mass(effects), "metricClean": m_clean.mean().item(),
                          "totalEffect": (m_patch - m_clean.detach()).mean().item()}}

    def run_ig(self):
        subs = self.subs
        clean, m_clean = self.states(self.clean, set(subs))
        patch, m_patch = self.states(self.patch, set(subs))
        effects, grads, deltas = {}, {}, {}
        ids = self.clean.repeat(IG_STEPS, 1)
        alpha = (torch.arange(IG_STEPS, dtype=torch.float32) / IG_STEPS).view(IG_STEPS, 1, 1, 1)
        for name in subs:
            sae = self.saes[name]
            (fc, rc), (fp, rp) = clean[name], patch[name]
            f = ((1 - alpha) * fc + alpha * fp).reshape(-1, *fc.shape[1:]).requires_grad_()
            r = ((1 - alpha) * rc + alpha * rp).reshape(-1, *rc.shape[1:]).requires_grad_()

            def hook(n, x, name=name, sae=sae, f=f, r=r):
                return sae.decode(f) + r if n == name else x
            self.metric(self.model.forward(ids, hook), IG_STEPS).sum().backward()
            g_act = f.grad.view(IG_STEPS, *fc.shape).sum(0) / IG_STEPS
            g_res = r.grad.view(IG_STEPS, *rc.shape).sum(0) / IG_STEPS
            d_act, d_res = fp - fc, rp - rc
            effects[name] = (g_act * d_act, (g_res * d_res).sum(-1))
            grads[name] = (g_act, g_res)
            deltas[name] = (d_act, d_res)
        self.ig = (effects, grads, deltas)
        return m_clean, m_patch

    def ig_stage(self):
        m_clean, m_patch = self.run_ig()
        return {"check": {"effectMass": self.effect_mass(self.ig[0]), "metricClean": m_clean.mean().item(),
                          "totalEffect": (m_patch - m_clean).mean().item()}}

    def exact(self):
        name, sae = self.exact_sub, self.saes[self.exact_sub]
        clean, m_clean = self.states(self.clean, {name})
        patch, _ = self.states(self.patch, {name})
        (fc, rc), (fp, rp) = clean[name], patch[name]
        diff = fp - fc
        diff[..., self.exact_features:] = 0  # the fixed feature subset
        mass, idxs = 0.0, torch.nonzero(diff)
        with torch.no_grad():
            for idx in idxs:
                f = fc.clone()
                f[tuple(idx)] = fp[tuple(idx)]
                x = sae.decode(f) + rc
                mass += abs((self.metric(self.model.forward(self.clean, lambda n, v: x if n == name else v)) - m_clean).sum().item())
            x_hat = sae.decode(fc)
            for b in range(self.B):
                for s in range(self.S):
                    r = rc.clone()
                    r[b, s] = rp[b, s]
                    x = x_hat + r
                    mass += abs((self.metric(self.model.forward(self.clean, lambda n, v: x if n == name else v)) - m_clean).sum().item())
        return {"check": {"effectMass": mass / self.B, "featurePatches": len(idxs)},
                "detail": {"submodule": name, "featurePatches": len(idxs), "errorPatches": self.B * self.S}}

    def pairs(self):
        """sfc's edge pairs: every direct input U of each submodule D, last layer first."""
        return [(u, d, [m for m in self.model.inputs_of(d) if m != u]) for d in reversed(self.subs) if d != "embed"
                for u in self.model.inputs_of(d) if u in self.saes]

    def jvp(self, up, down, mid, nodes, grads, deltas, per_node):
        """Edge rows of U → D (aggregation sum) for the selected downstream nodes (b, s, k)."""
        g_act, g_res = grads[down]
        d_act, d_res = deltas[up]
        store = {}

        def hook(name, x):
            if name == up:
                spliced, f, res = self.saes[up].splice(x)
                store["up"] = (f, res)
                return spliced
            if name in mid:
                return x.detach()  # stop-gradient at the midstream submodules
            if name == down:
                sae = self.saes[down]
                g = sae.encode(x)
                y_res = x - sae.decode(g)
                store["down"] = torch.cat([g_act * g, (g_res * y_res).sum(-1, keepdim=True)], dim=-1)
            return x
        self.model.forward(self.clean, hook)
        to_backprop = store["down"]
        f, res = store["up"]
        rows = {}
        if per_node:
            groups = [((s, k), [b]) for b, s, k in nodes.tolist()]
        else:
            by = {}
            for b, s, k in nodes.tolist():
                by.setdefault((s, k), []).append(b)
            groups = list(by.items())
        for (s, k), bs in groups:
            f.grad, res.grad = None, None
            if per_node:
                to_backprop[bs[0], s, k].backward(retain_graph=True)
            else:
                seed = torch.zeros_like(to_backprop)
                seed[bs, s, k] = 1
                to_backprop.backward(seed, retain_graph=True)
            with torch.no_grad():
                row = torch.cat([(f.grad * d_act).sum((0, 1)), (res.grad * d_res).sum().view(1)])
                rows[k] = rows[k] + row if k in rows else row
        return rows

    def edges_stage(self, per_node):
        if self.ig is None:
            self.run_ig()
        effects, grads, deltas = self.ig
        nodes = {n: torch.nonzero(torch.cat([a, r.unsqueeze(-1)], -1).abs() > NODE_THRESHOLD) for n, (a, r) in effects.items()}
        mass, entries = 0.0, 0
        for up, down, mid in self.pairs():
            if len(nodes[down]) == 0:
                continue
            for row in self.jvp(up, down, mid, nodes[down], grads, deltas, per_node).values():
                w = row / self.B
                mass += w.abs().sum().item()
                entries += int((w != 0).sum().item())
        count = sum(len(v) for v in nodes.values())
        return {"check": {"downstreamNodes": count, "edgeMass": mass},
                "detail": {"downstreamNodes": count, "edgeEntries": entries, "pairs": len(self.pairs())}}

    def eval(self):
        if self.ig is None:
            self.run_ig()
        subs = self.subs
        patch, _ = self.states(self.patch, set(subs))
        means = {n: (f.mean(0), r.mean(0)) for n, (f, r) in patch.items()}
        agg = {n: (a.sum(1).mean(0), r.sum(1).mean(0)) for n, (a, r) in self.ig[0].items()}

        def run(keep):
            def hook(name, x):
                if name not in self.saes:
                    return x
                sae = self.saes[name]
                f = sae.encode(x)
                res = x - sae.decode(f)
                (ka, kr), (ma, mr) = keep[name], means[name]
                return sae.decode(torch.where(ka, f, ma)) + torch.where(kr, res, mr)
            with torch.no_grad():
                logits = self.model.forward(self.clean, hook)
            return -self.metric(logits)  # ablation.py: logit[clean] − logit[patch]

        with torch.no_grad():
            m_full = -self.metric(self.model.forward(self.clean))
        circuit = {n: (a.abs() > EVAL_THRESHOLD, r.abs() > EVAL_THRESHOLD) for n, (a, r) in agg.items()}
        empty = {n: (torch.zeros_like(a), torch.zeros_like(r)) for n, (a, r) in circuit.items()}
        complement = {n: (~a, ~r) for n, (a, r) in circuit.items()}
        m_empty, m_circ, m_comp = run(empty).mean().item(), run(circuit).mean().item(), run(complement).mean().item()
        full = m_full.mean().item()
        ratio = lambda v: (v - m_empty) / (full - m_empty) if full != m_empty else float("nan")  # noqa: E731
        nodes = sum(int(a.sum()) + int(r.sum()) for a, r in circuit.values())
        return {"check": {"mFull": full, "mEmpty": m_empty},
                "detail": {"nodes": nodes, "faithfulness": ratio(m_circ), "completeness": ratio(m_comp)}}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workload", required=True, help="bench/cache/<scale> (made by bench/run.ts)")
    ap.add_argument("--examples", type=int, default=None)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--stages", default="forward,sae-forward,attrib,ig,exact,edges,eval")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None, help="write the JSON here (atomically) instead of stdout")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)  # make_models sets 1 at import
    stages = [s for s in STAGES if s in args.stages.split(",")]
    unknown = set(args.stages.split(",")) - set(STAGES)
    if unknown:
        raise SystemExit(f"unknown stages {sorted(unknown)}; stages: {', '.join(STAGES)}")

    log = lambda line: print(f"[pytorch] {line}", file=sys.stderr, flush=True)  # noqa: E731
    t0 = time.perf_counter()
    with open(os.path.join(args.workload, "workload.json")) as f:
        examples = args.examples or json.load(f)["scale"]["examples"]
    bench = Bench(args.workload, examples)
    blas = "OpenBLAS" if any("openblas" in line for line in open("/proc/self/maps")) else "reference BLAS"
    out = {"name": "pytorch", "available": True, "describe": f"torch {torch.__version__}, {blas}, {torch.get_num_threads()} threads",
           "loadSeconds": time.perf_counter() - t0, "loadedRssMiB": rss_mib(), "stages": {}}
    log(f"loaded in {out['loadSeconds']:.1f} s, RSS {out['loadedRssMiB']:.0f} MiB ({out['describe']})")
    w0 = time.perf_counter()
    bench.attrib()  # one untimed attribution first, as on the sfc side (first-call costs)
    log(f"warm-up (one untimed attrib): {time.perf_counter() - w0:.1f} s")
    peak = peak_mib()
    fns = {"forward": bench.forward, "sae-forward": bench.sae_forward, "attrib": bench.attrib, "ig": bench.ig_stage,
           "exact": bench.exact, "edges": lambda: bench.edges_stage(False), "edges-loop": lambda: bench.edges_stage(True),
           "eval": bench.eval}
    for stage in stages:
        r = {"seconds": [], "cpuSeconds": []}
        i = -1
        while True:
            i += 1
            if not (i < args.runs or (i < FAST_RUNS and "error" not in r and max(r["seconds"]) < FAST_SECONDS)):
                break
            can_reset = reset_peak()
            t, cpu = time.perf_counter(), time.process_time()
            try:
                v = fns[stage]()
                r["seconds"].append(time.perf_counter() - t)
                r["cpuSeconds"].append(time.process_time() - cpu)
                r.update(v)
            except Exception as e:  # noqa: BLE001 — recorded, the other stages still run
                r["error"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                log(f"{stage} run {i + 1}: FAILED {r['error']}")
                break
            finally:
                p = peak_mib()
                peak = max(peak, p)
                if can_reset:
                    r.setdefault("peakRssMiB", []).append(p)
            log(f"{stage} run {i + 1}/{max(args.runs, len(r['seconds']))}: {r['seconds'][-1]:.2f} s (CPU {r['cpuSeconds'][-1]:.2f} s)" + (f", peak RSS {r['peakRssMiB'][-1]:.0f} MiB" if "peakRssMiB" in r else ""))
        out["stages"][stage] = r
    out["peakRssMiB"] = max(peak, peak_mib())
    text = json.dumps(out, indent=2) + "\n"
    if args.out:
        with open(args.out + ".tmp", "w") as f:
            f.write(text)
        os.replace(args.out + ".tmp", args.out)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
