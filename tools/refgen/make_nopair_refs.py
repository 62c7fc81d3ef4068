#!/usr/bin/env python3
"""Single-prompt ("--nopair") references for the fixtures/models/ test models (dev tool, not shipped).

feature-circuits' circuit.py --nopair runs prompts without a contrastive partner: the patch state
of every submodule is all zeros (attribution.py: `hidden_states_patch = zeros` when `patch is
None`) and the metric is -logit[last, answer] (circuit.py's nopair metric_fn).  The prompts come
from a cluster JSON file (data_loading_utils.load_examples_nopair: `{"<id>": {"context": [piece,
...], "answer": " x"}}`, pieces joined with "", entries in file order, answers of more than one
token skipped) and have different token lengths.

For each chosen model (whose edges/ SAEs make_edge_refs.py wrote; both are read, never changed)
this writes ``fixtures/models/<name>/nopair/``:

    clusters.json         the prompts in the reference's cluster format (one entry with a
                          two-token answer, which the loader must skip)
    data.json             their token ids and answer ids, lengths
    attrib_sum.json       node effects, method attrib (+ metric)
    ig_sum.json           node effects, method ig (10 steps), every edge of get_circuit (jvp),
                          the thresholded circuit (layout of make_edge_refs.py's ig_sum.json)
    exact_sum.json        node effects, method exact (activation patching to the zero state)

Every prompt runs ALONE (batch of one, its own positions 0..len-1): the semantics sfc's padded
batches must reproduce.  The math is make_edge_refs.py's (float64 autograd through a whole-model
forward with the SAE state as leaves), with the patch state zero and the nopair metric; edges use
the ig gradients.  Aggregation: sum over positions (and over both position axes for edges), mean
over examples ("none" does not apply to prompts of different lengths).

    python3 tools/refgen/make_nopair_refs.py [--only NAME ...]
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_edge_refs as E  # noqa: E402  (re-runs with /usr/bin/python3 when needed)
from make_models import dump_json, r7  # noqa: E402

import argparse  # noqa: E402
import collections  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

DT = E.DT
FORMAT = "sfc.refgen.nopair/v1"

FIXTURES = [
    {"name": "neox-seq-r100", "seed": 3101, "lengths": [5, 3, 6, 2, 4], "steps": 10, "node_threshold": 0.05, "edge_threshold": 0.01},
    {"name": "gpt2-a", "seed": 3104, "lengths": [4, 6, 2, 5, 3], "steps": 10, "node_threshold": 0.1, "edge_threshold": 0.02},
]


README = """# Single-prompt (--nopair) references for `{name}`

Written by `tools/refgen/make_nopair_refs.py` (do not edit by hand; re-run the script), on the
model in the parent folder and the SAEs in `../edges/saes/`. feature-circuits' `circuit.py
--nopair`: patch state zero, metric `-logit[last, answer]`; {n} prompts of lengths {lengths}, each
run alone (batch of one) in float64. See tools/refgen/README.md (nopair/) for the fields; checked
by `test/src/nopair-parity.test.ts` (sfc runs the prompts in right-padded batches; the CLI on
neox-seq-r100's in `test/src/cli-prompts.test.ts`).

| file | contents |
| --- | --- |
| `clusters.json` | the prompts in the reference's cluster format; entry `skip` has a two-token answer and is left out |
| `data.json` | token ids, answer ids and lengths of the kept prompts, in file order; the model's sha256 |
| `attrib_sum.json`, `exact_sum.json` | node effects (sum over positions, mean over prompts) and the metric per prompt |
| `ig_sum.json` | ig node effects, every edge (counts, sums, entries), `resid_last -> y`, thresholds, circuit |
"""


def nopair_metric(logits, ca, _pa):
    """circuit.py --nopair: -logit[last, answer]."""
    last = logits[:, -1, :]
    return -last[torch.arange(last.shape[0]), ca]


# make_edge_refs' ig_grads / node_effects call the module-level metric_fn: point it at the nopair one.
E.metric_fn = nopair_metric


def zero_states(clean):
    return {k: (torch.zeros_like(f), torch.zeros_like(r)) for k, (f, r) in clean.items()}


def exact_effects(model, saes, ids, ca, clean):
    """Per (s, i) with f_clean != 0: m with f[s, i] := 0 (its patch value) minus m_clean; per s: r[s] := 0."""
    with torch.no_grad():
        m0 = float(nopair_metric(model.run(ids), ca, None)[0])
        out = {}
        for sub in model.submodules:
            f0, r0 = clean[sub]
            S, F = f0.shape[1], f0.shape[2]
            act, err = torch.zeros(1, S, F, dtype=DT), torch.zeros(1, S, dtype=DT)
            for s in range(S):
                for i in range(F):
                    if f0[0, s, i] == 0:
                        continue
                    f = f0.clone()
                    f[0, s, i] = 0
                    act[0, s, i] = float(nopair_metric(model.run(ids, {sub: lambda x, f=f: saes[sub].decode(f) + r0}), ca, None)[0]) - m0
                r = r0.clone()
                r[0, s] = 0
                err[0, s] = float(nopair_metric(model.run(ids, {sub: lambda x, r=r: saes[sub].decode(f0) + r}), ca, None)[0]) - m0
            out[sub] = (act, err)
    return out


def sum_nodes(per_example, sub, n):
    act = sum(e[sub][0][0].sum(0) for e in per_example) / n
    err = sum(float(e[sub][1][0].sum()) for e in per_example) / n
    return act, err


def pick_prompts(model, saes, words, lengths, gen):
    """Random word prompts of the given lengths whose SAE pre-activations all stay >= 2e-3 std from the ReLU kink."""
    out = []
    for L in lengths:
        for _ in range(200):
            ids = [words[int(i)] for i in torch.randint(len(words), (L,), generator=gen)]
            _, acts = model.activations(torch.tensor([ids]))
            ok = True
            for sub in model.submodules:
                pre = saes[sub].pre(acts[sub]).reshape(-1, saes[sub].F)
                if (pre.abs() < 2e-3 * saes[sub].pre(acts[sub]).std()).any():
                    ok = False
                    break
            if ok:
                out.append(ids)
                break
        else:
            raise RuntimeError(f"no prompt of length {L} away from the ReLU kinks")
    return out


def build(spec):
    t0 = time.time()
    name = spec["name"]
    folder = os.path.join(E.MODELS_DIR, name)
    out_root = os.path.join(folder, "nopair")
    os.makedirs(out_root, exist_ok=True)
    model = E.Transformer(folder)
    with open(os.path.join(folder, "edges", "data.json")) as f:
        edge_data = json.load(f)
    sae_root = os.path.join(folder, "edges", "saes")
    fmt_saelens = os.path.exists(os.path.join(sae_root, "embed", "cfg.json"))
    saes = {sub: (E.read_saelens if fmt_saelens else E.read_dictionary_learning)(os.path.join(sae_root, E.fc_dir(sub))) for sub in model.submodules}
    gen = torch.Generator().manual_seed(spec["seed"])

    with open(os.path.join(folder, "tokenizer.json")) as f:
        vocab = json.load(f)["model"]["vocab"]
    inv = {i: w for w, i in vocab.items()}
    words = sorted(i for w, i in vocab.items() if i >= 3 and w.isalpha())
    prompts = pick_prompts(model, saes, words, spec["lengths"], gen)
    answers = [words[int(i)] for i in torch.randint(len(words), (len(prompts),), generator=gen)]

    # clusters.json: the reference's format; entry "skip" has a two-token answer (load_examples_nopair skips it)
    clusters = {}
    for b, (ids, a) in enumerate(zip(prompts, answers)):
        pieces = [inv[ids[0]]] + [" " + inv[i] for i in ids[1:]]
        clusters[f"c{b}"] = {"context": pieces, "answer": " " + inv[a]}
        if b == 1:
            clusters["skip"] = {"context": [inv[ids[0]], " " + inv[ids[1]]], "answer": f" {inv[words[0]]} {inv[words[1]]}"}
    dump_json(os.path.join(out_root, "clusters.json"), clusters)
    N = len(prompts)
    data = {"format": FORMAT, "model": name, "model_safetensors_sha256": edge_data["model_safetensors_sha256"],
            "description": "single prompts of different lengths (file order of clusters.json, entry 'skip' left out)",
            "n_examples": N, "ids": prompts, "answer": answers, "lengths": [len(p) for p in prompts]}
    dump_json(os.path.join(out_root, "data.json"), data, compact=True)

    # per example, alone
    per = []
    for ids, a in zip(prompts, answers):
        ids_t, ca = torch.tensor([ids]), torch.tensor([a])
        _, acts = model.activations(ids_t)
        clean = E.states(saes, acts)
        patch = zero_states(clean)
        with torch.no_grad():
            m = float(nopair_metric(model.run(ids_t), ca, None)[0])
        attrib, _ = E.node_effects(model, saes, ids_t, ca, None, clean, patch, 1)
        ig, grads = E.node_effects(model, saes, ids_t, ca, None, clean, patch, spec["steps"])
        exact = exact_effects(model, saes, ids_t, ca, clean)
        per.append({"ids": ids_t, "ca": ca, "acts": acts, "clean": clean, "patch": patch, "m": m,
                    "attrib": attrib, "ig": ig, "grads": grads, "exact": exact})

    Fn = {s: saes[s].F for s in model.submodules}
    common = {
        "format": FORMAT, "model": name, "model_type": model.kind, "parallel_residual": model.parallel,
        "torch_version": torch.__version__, "compute_dtype": "float64", "seed": spec["seed"],
        "submodules": model.submodules, "d_sae": Fn, "error_node_index": Fn[model.submodules[0]],
        "n_examples": N, "lengths": data["lengths"], "aggregation": "sum",
        "metric": {"definition": "-logits[last, answer] (each prompt alone)", "clean": r7([p["m"] for p in per]),
                   "clean_mean": r7(sum(p["m"] for p in per) / N)},
    }
    for method in ("attrib", "exact"):
        out = dict(common, method=method, steps=1 if method == "attrib" else None)
        out["nodes"] = {}
        for sub in model.submodules:
            a, e = sum_nodes([p[method] for p in per], sub, N)
            out["nodes"][sub] = {"act": r7(a), "err": r7(e)}
        dump_json(os.path.join(out_root, f"{method}_sum.json"), out, compact=True)

    # thresholds away from per-example and aggregated ig values
    vals = [v for p in per for sub in model.submodules for v in torch.cat([p["ig"][sub][0].reshape(-1), p["ig"][sub][1].reshape(-1)]).tolist()]
    agg_nodes = {sub: sum_nodes([p["ig"] for p in per], sub, N) for sub in model.submodules}
    vals += [v for sub in model.submodules for v in agg_nodes[sub][0].tolist() + [agg_nodes[sub][1]]]
    node_t, node_margin = E.pick_threshold(spec["node_threshold"], vals)
    nodes = [{sub: E.selected_nodes(p["ig"][sub], node_t) for sub in model.submodules} for p in per]

    pairs = model.edge_pairs()
    agg_edges = {}
    fd_worst, fd_n = 0.0, 0
    for (up, down, mids) in pairs:
        acc = {}
        for p, sel in zip(per, nodes):
            rows = E.pair_rows(model, saes, p["ids"], up, down, mids, p["clean"], p["patch"], p["grads"], sel[down])
            if rows:
                w, n = E.fd_check(model, saes, p["ids"], up, down, mids, p["clean"], p["patch"], p["grads"], rows, p["acts"], 2, gen)
                fd_worst, fd_n = max(fd_worst, w), fd_n + n
            for (b, s, k), row in rows.items():
                acc[k] = acc.get(k, 0) + row.sum(0) / N
        agg_edges[(up, down)] = acc
    last = model.submodules[-1]

    def kept(sub):
        a, e = agg_nodes[sub]
        full = torch.cat([a, torch.tensor([e], dtype=DT)])
        return {int(i) for i in (full.abs() > node_t).nonzero().reshape(-1)}
    cand = []
    for (up, down), acc in agg_edges.items():
        ku, kd = kept(up), kept(down)
        cand += [float(row[u]) for k, row in acc.items() if k in kd for u in row.nonzero().reshape(-1).tolist() if u in ku]
    a, e = agg_nodes[last]
    cand += a.tolist() + [e]
    edge_t, edge_margin = E.pick_threshold(spec["edge_threshold"], cand, 0.15)

    out = dict(common, method="ig", steps=spec["steps"], node_threshold=node_t, edge_threshold=edge_t,
               node_threshold_margin=r7(node_margin), edge_threshold_margin=r7(edge_margin),
               fd_check={"entries": fd_n, "max_relative_error": r7(fd_worst)})
    out["nodes"] = {sub: {"act": r7(agg_nodes[sub][0]), "err": r7(agg_nodes[sub][1])} for sub in model.submodules}
    out["downstream_nodes_above_threshold"] = {sub: sum(len(n[sub]) for n in nodes) for sub in model.submodules}
    edges = collections.defaultdict(dict)
    all_vals = [abs(float(v)) for acc in agg_edges.values() for row in acc.values() for v in row.tolist() if v != 0]
    floor = 0.0
    if len(all_vals) > E.MAX_ENTRIES:
        floor, _ = E.pick_threshold(float(f"{sorted(all_vals, reverse=True)[E.MAX_ENTRIES]:.3g}"), all_vals, 0.2)
    circ_edges = []
    for (up, down, _m) in pairs:
        acc = agg_edges[(up, down)]
        entries, nnz, tot, ab, mx = [], 0, 0.0, 0.0, 0.0
        ku, kd = kept(up), kept(down)
        for k in sorted(acc):
            for u in acc[k].nonzero().reshape(-1).tolist():
                w = float(acc[k][u])
                nnz, tot, ab, mx = nnz + 1, tot + w, ab + abs(w), max(mx, abs(w))
                if abs(w) > floor:
                    entries.append([k, u, r7(w)])
                if k in kd and u in ku and abs(w) > edge_t:
                    circ_edges.append([up, [u], down, [k], r7(w)])
        edges[up][down] = {"n_rows": len(acc), "nnz": nnz, "sum": r7(tot), "abs_sum": r7(ab), "max_abs": r7(mx), "entries": entries}
    a, e = agg_nodes[last]
    full = torch.cat([a, torch.tensor([e], dtype=DT)])
    edges[last]["y"] = {"dense": r7(full)}
    for i in (full.abs() > node_t).nonzero().reshape(-1).tolist():
        if abs(float(full[i])) > edge_t:
            circ_edges.append([last, [i], "y", [], r7(float(full[i]))])
    out["edges"] = edges
    out["edges_entry_floor"] = floor
    circ_nodes = {}
    for sub in model.submodules:
        a, e = agg_nodes[sub]
        f = torch.cat([a, torch.tensor([e], dtype=DT)])
        circ_nodes[sub] = [[i, r7(float(f[i]))] for i in (f.abs() > node_t).nonzero().reshape(-1).tolist()]
    out["circuit"] = {"nodes": circ_nodes, "edges": circ_edges}
    dump_json(os.path.join(out_root, "ig_sum.json"), out, compact=True)
    with open(os.path.join(out_root, "README.md"), "w") as f:
        f.write(README.format(name=name, n=N, lengths=", ".join(str(x) for x in data["lengths"])))
    return {"name": name, "seconds": round(time.time() - t0, 1), "node_threshold": node_t, "node_margin": node_margin,
            "edge_threshold": edge_t, "edge_margin": edge_margin, "fd_checked": fd_n, "fd_worst": fd_worst,
            "downstream": out["downstream_nodes_above_threshold"], "circuit_nodes": sum(len(v) for v in circ_nodes.values()),
            "circuit_edges": len(circ_edges)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="*", help="fixture names to (re)generate")
    args = ap.parse_args()
    for spec in FIXTURES:
        if args.only and spec["name"] not in args.only:
            continue
        print(json.dumps(build(spec)))


if __name__ == "__main__":
    main()
