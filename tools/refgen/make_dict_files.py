#!/usr/bin/env python3
"""Test files for @sfc/dictionaries' binary format readers (dev tool, not shipped).

Writes small files made by the real writers -- ``torch.save`` (zip serialization) and
``numpy.save`` / ``numpy.savez`` / ``numpy.savez_compressed`` -- to
``packages/dictionaries/test-data/formats/`` plus ``expected.json`` with every tensor's dtype, shape and
values (flattened in C order, exact: float16/bfloat16/float64 values are given as the float32
value a reader must produce, ints as ints), so the TypeScript tests compare exactly.

    python3 tools/refgen/make_dict_files.py [--out packages/dictionaries/test-data/formats]

Needs Debian's python3-torch and python3-numpy (re-runs itself with /usr/bin/python3 when a
pyenv python shadows it).  Output is deterministic (fixed seeds, fixed zip timestamps).

Files (all small; total < 500 KB):
  tensors.pt       dict of tensors: float32/float16/bfloat16/float64, int64/int32/int16/int8/
                   uint8/bool, a transposed view saved without .contiguous(), two tensors sharing
                   one storage at different offsets, a column slice (offset + stride), an
                   expanded view (stride 0), a permuted 3-d view, a 0-d scalar, an empty tensor,
                   an nn.Parameter
  ae.pt            a real nn.Module state_dict (OrderedDict with _metadata, BUILD opcode),
                   dictionary_learning AutoEncoder layout
  backup.pt        a training backup {"ae": state_dict, "optimizer": Adam state_dict, "step",
                   "config"}; optimizer state has int keys, tuples, floats, bools, None
  sparse.pt        sparse COO tensors: coalesced, uncoalesced with a duplicate index, nnz = 0,
                   hybrid (one sparse + one dense dim), float16 values
  bigendian.pt     tensors.pt-like file as a big-endian machine writes it: every storage
                   byte-swapped and a ``byteorder`` record saying "big" (torch >= 2.1 layout)
  proto4.pt        torch.save(..., pickle_protocol=4): FRAME, STACK_GLOBAL, MEMOIZE,
                   SHORT_BINUNICODE opcodes
  legacy.pt        the pre-1.6 non-zip format (readers must refuse it with a hint); the only
                   file whose bytes change between runs (it embeds storage addresses)
  circuit.pt       a feature-circuits circuit {"examples", "nodes", "edges"}; nodes are
                   ``activation_utils.SparseAct`` objects (act, resc, one also res), edges are
                   sparse COO (one dense), storages tagged cuda:0
  circuits/*.pt    realistic feature-circuits circuits of fixtures/small-a, saved the way
                   feature-circuits' circuit.py saves them (names ``{model}_{dataset}_n{N}_agg{agg}
                   _node{T}.pt``, ``..._nodeall.pt`` for nodes only): nodes = the reference's IG
                   effects (fixtures/small-a/ref/ig_{sum,none}.json) as SparseAct(act [F] or [S, F],
                   resc [1] or [S, 1]) with no 'y' node; edges[up][down] sparse COO [F+1, F+1] or
                   [S, F+1, S, F+1] (downstream first, index F = error), edges[resid_1]['y'] [F+1]
                   or [S, F+1]; examples = data.jsonl's 40 prompts.  Edge entries with |w| <= 0.01
                   are dropped to keep the files small (feature-circuits keeps them all), so a
                   conversion at edge threshold 0.01 must reproduce the reference circuit exactly.
  *.npy / *.npz    big-endian, fortran-order, header versions 2 and 3, savez (stored) and
                   savez_compressed (deflated) archives with many dtypes
  zip64.npz        np.savez written with zip64 central-directory records and end record forced
                   (as numpy does for arrays over 4 GiB)
  bad/*.pt         real torch.save files whose tensor arguments are hostile or inconsistent:
                   a view reaching past its storage, a 2^80-element shape, a storage offset past
                   the end, a negative size, an expanded (stride 0) view of 2^30 elements, a
                   missing storage record, a truncated storage, a data.pkl declaring an
                   impossible deflate ratio (zip bomb); readers must refuse each before allocating
  evil/*.pt        torch zips whose data.pkl would run code if unpickled by Python: os.system
                   (hand-written GLOBAL), posix.system, builtins.eval (protocol 2, written as
                   __builtin__.eval), subprocess.Popen, builtins.exec via STACK_GLOBAL
                   (protocol 4), and an unknown class evil.Thing.  Each payload creates a marker
                   file under /tmp; this script checks (in a subprocess) that Python's own
                   pickle really does create it, then deletes it.
"""

import os
import sys

try:
    import torch
    import numpy as np
except ImportError:
    if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise SystemExit("make_dict_files.py needs PyTorch and numpy: apt-get install python3-torch python3-numpy")

import argparse
import contextlib
import io
import json
import pickle
import struct
import subprocess
import tempfile
import time
import types
import zipfile
from collections import OrderedDict

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_OUT = os.path.join(ROOT, "packages", "dictionaries", "test-data", "formats")
FIXED_TIME = 1704067200.0  # 2024-01-01T00:00:00Z: zip timestamps of numpy's archives

DTYPE_NAMES = {
    torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16", torch.float64: "float64",
    torch.int64: "int64", torch.int32: "int32", torch.int16: "int16", torch.int8: "int8",
    torch.uint8: "uint8", torch.bool: "bool",
}


@contextlib.contextmanager
def fixed_clock():
    """numpy.savez stamps zip entries with the current local time; pin it for reproducible bytes."""
    real = time.time
    os.environ["TZ"] = "UTC"
    time.tzset()
    time.time = lambda: FIXED_TIME
    try:
        yield
    finally:
        time.time = real


def values(t):
    """Flattened C-order values as a reader must return them (floats as float32, ints exact)."""
    t = t.detach()
    if t.is_floating_point():
        return [float(v) for v in t.to(torch.float32).contiguous().reshape(-1).tolist()]
    if t.dtype == torch.bool:
        return [1 if v else 0 for v in t.contiguous().reshape(-1).tolist()]
    return [int(v) for v in t.contiguous().reshape(-1).tolist()]


def dense_entry(t):
    return {"dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape), "data": values(t)}


def sparse_entry(t):
    idx = t._indices()
    return {
        "kind": "sparse_coo", "dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape),
        "sparse_dim": t.sparse_dim(), "nnz": int(t._nnz()),
        "indices": [int(v) for v in idx.reshape(-1).tolist()],
        "values": values(t._values()), "values_shape": list(t._values().shape),
        "dense": values(t.to_dense()),
    }


def np_entry(a):
    a = np.asarray(a)
    kind = a.dtype.kind
    if kind == "f":
        data = [float(v) for v in np.ascontiguousarray(a, dtype=np.float32).reshape(-1).tolist()]
    elif kind == "b":
        data = [1 if v else 0 for v in a.reshape(-1).tolist()]
    else:
        data = [int(v) for v in np.ascontiguousarray(a).reshape(-1).tolist()]
    return {"descr": a.dtype.str, "shape": list(a.shape), "fortran_order": bool(a.flags.f_contiguous and not a.flags.c_contiguous), "data": data}


def save_torch(obj, path, **kw):
    torch.save(obj, path, **kw)


# ---------------------------------------------------------------- torch files

def make_tensors(g):
    shared = torch.arange(12, dtype=torch.float32) * 0.25 - 1.0
    base_t = torch.randn(4, 3, generator=g)
    t = {
        "f32": torch.randn(3, 4, generator=g),
        "f16": torch.randn(2, 5, generator=g).half(),
        "bf16": torch.randn(3, 3, generator=g).bfloat16(),
        "f64": torch.randn(4, generator=g, dtype=torch.float64),
        "transposed": base_t.t(),                      # [3,4], stride (1,3), not contiguous
        "shared_a": shared[2:6],                       # storage offset 2
        "shared_b": shared[6:12].view(2, 3),           # same storage, offset 6
        "column": torch.randn(3, 4, generator=g)[:, 1],  # offset 1, stride (4,)
        "expanded": torch.randn(3, generator=g).expand(2, 3),  # stride (0, 1)
        "permuted": torch.randn(2, 3, 4, generator=g).permute(2, 0, 1),
        "f16_t": torch.randn(3, 2, generator=g).half().t(),
        "scalar": torch.tensor(3.5),
        "empty": torch.zeros(0, 3),
        "i64": torch.tensor([1, -2, 2 ** 40, -(2 ** 40) - 7], dtype=torch.int64),
        "i32": torch.tensor([[7, -8], [2 ** 31 - 1, -(2 ** 31)]], dtype=torch.int32),
        "i16": torch.tensor([-300, 300], dtype=torch.int16),
        "i8": torch.tensor([-128, 127, 0], dtype=torch.int8),
        "u8": torch.tensor([0, 255, 17], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "param": torch.nn.Parameter(torch.randn(2, 2, generator=g)),
    }
    assert not t["transposed"].is_contiguous() and t["transposed"].stride() == (1, 3)
    assert t["shared_a"].storage_offset() == 2 and t["shared_b"].storage_offset() == 6
    return t


class AutoEncoder(torch.nn.Module):
    """dictionary_learning's AutoEncoder layout: encoder (Linear + bias), decoder (no bias), bias."""

    def __init__(self, d, f, g):
        super().__init__()
        self.bias = torch.nn.Parameter(torch.randn(d, generator=g) * 0.1)
        self.encoder = torch.nn.Linear(d, f, bias=True)
        self.decoder = torch.nn.Linear(f, d, bias=False)
        with torch.no_grad():
            self.encoder.weight.copy_(torch.randn(f, d, generator=g) * 0.3)
            self.encoder.bias.copy_(torch.randn(f, generator=g) * 0.1)
            self.decoder.weight.copy_(torch.randn(d, f, generator=g) * 0.3)


def make_backup(g):
    ae = AutoEncoder(8, 16, g)
    opt = torch.optim.Adam(ae.parameters(), lr=1e-3, betas=(0.9, 0.999))
    for _ in range(2):
        x = torch.randn(5, 8, generator=g)
        f = torch.relu(ae.encoder(x - ae.bias))
        loss = ((ae.decoder(f) + ae.bias - x) ** 2).sum() + 1e-3 * f.abs().sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    sd = ae.state_dict()
    backup = {
        "ae": sd,
        "optimizer": opt.state_dict(),
        "step": 2,
        "config": {"lr": 1e-3, "dict_size": 16, "activation_dim": 8, "name": "unit-test sae",
                   "betas": (0.9, 0.999), "resample": None, "ok": True},
    }
    return ae, sd, backup


def flat(obj, prefix=""):
    """Flattened view of nested dicts/lists of tensors, as stateDict() in TS must return it."""
    out = {}
    if isinstance(obj, torch.Tensor):
        t = obj.to_dense() if obj.is_sparse else obj
        out[prefix] = dense_entry(t)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flat(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(flat(v, f"{prefix}.{i}" if prefix else str(i)))
    return out


def make_sparse(g):
    coo = torch.sparse_coo_tensor(torch.tensor([[0, 1, 3], [4, 0, 2]]), torch.tensor([1.5, -2.0, 0.25]), (4, 5)).coalesce()
    unco = torch.sparse_coo_tensor(torch.tensor([[2, 0, 2], [1, 1, 1]]), torch.tensor([1.0, 2.0, 3.0]), (3, 2))
    assert not unco.is_coalesced()
    empty = torch.sparse_coo_tensor(torch.zeros(2, 0, dtype=torch.int64), torch.zeros(0), (3, 3))
    hybrid = torch.sparse_coo_tensor(torch.tensor([[0, 3]]), torch.randn(2, 2, generator=g), (4, 2))
    half = torch.sparse_coo_tensor(torch.tensor([[1], [0], [2]]), torch.tensor([0.333]).half(), (2, 2, 3))
    return {"coo": coo, "uncoalesced": unco, "empty": empty, "hybrid": hybrid, "half": half}


def byteswap_zip(src_path, dst_path, itemsizes):
    """Rewrite a torch zip as a big-endian machine would have written it."""
    with zipfile.ZipFile(src_path) as zin:
        names = zin.namelist()
        prefix = names[0].split("/")[0]
        with zipfile.ZipFile(dst_path, "w", compression=zipfile.ZIP_STORED) as zout:
            for name in names:
                data = zin.read(name)
                rel = name[len(prefix) + 1:]
                if rel.startswith("data/"):
                    size = itemsizes[rel[5:]]
                    if size > 1:
                        data = np.frombuffer(data, dtype=np.dtype(f"<u{size}")).byteswap().tobytes()
                info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
                zout.writestr(info, data)
                if rel == "data.pkl":
                    zout.writestr(zipfile.ZipInfo(f"{prefix}/byteorder", date_time=(2024, 1, 1, 0, 0, 0)), b"big")


def storage_itemsizes(obj_tensors):
    """torch.save numbers storages in the order the pickler first meets them."""
    sizes, seen = {}, {}
    for t in obj_tensors:
        key = t.untyped_storage().data_ptr() if hasattr(t, "untyped_storage") else t.storage().data_ptr()
        if key not in seen:
            seen[key] = str(len(seen))
            sizes[seen[key]] = t.element_size()
    return sizes


# ---------------------------------------------------------------- feature-circuits circuit

activation_utils = types.ModuleType("activation_utils")


class SparseAct:
    """Stand-in for feature-circuits' activation_utils.SparseAct (same attributes, no methods needed)."""

    def __init__(self, act=None, res=None, resc=None):
        self.act = act
        self.res = res
        self.resc = resc


SparseAct.__module__ = "activation_utils"
activation_utils.SparseAct = SparseAct
sys.modules["activation_utils"] = activation_utils


def make_circuit(g):
    d_dict, d_model = 16, 8
    subs = ["embed", "attn_0", "mlp_0", "resid_0", "attn_1", "mlp_1", "resid_1"]

    def sparse_act_vec():
        a = torch.randn(d_dict, generator=g)
        a[a.abs() < 0.6] = 0
        return a

    nodes = {}
    for s in subs:
        nodes[s] = SparseAct(act=sparse_act_vec(), resc=torch.randn(1, generator=g))
    # aggregation "none": per-position effects [n_pos, d_dict] and residual [n_pos, 1]
    nodes["resid_1"] = SparseAct(act=torch.randn(3, d_dict, generator=g), resc=torch.randn(3, 1, generator=g))
    # an older save with the uncontracted residual as well
    nodes["mlp_0"] = SparseAct(act=sparse_act_vec(), res=torch.randn(d_model, generator=g), resc=torch.randn(1, generator=g))

    def sparse_edge(n_down, n_up, nnz):
        idx = torch.stack([torch.randint(0, n_down, (nnz,), generator=g), torch.randint(0, n_up, (nnz,), generator=g)])
        return torch.sparse_coo_tensor(idx, torch.randn(nnz, generator=g), (n_down, n_up)).coalesce()

    edges = {}
    order = subs
    for i, up in enumerate(order):
        for down in order[i + 1:i + 4]:
            edges.setdefault(up, {})[down] = sparse_edge(d_dict + 1, d_dict + 1, 6)
    edges["attn_0"]["resid_0"] = torch.randn(d_dict + 1, d_dict + 1, generator=g)  # a dense edge
    edges["resid_0"]["attn_1"] = torch.sparse_coo_tensor(torch.zeros(2, 0, dtype=torch.int64), torch.zeros(0), (d_dict + 1, d_dict + 1))
    edges["resid_1"] = {"y": torch.sparse_coo_tensor(torch.tensor([[0, 5, 16]]), torch.tensor([0.5, -1.25, 2.0]), (d_dict + 1,)).coalesce()}
    examples = [
        {"clean_prefix": "The author that the guards like", "clean_answer": " is", "patch_answer": " are", "n": 7},
        {"clean_prefix": "The doctors near the car", "clean_answer": " are", "patch_answer": " is", "n": 5},
    ]
    return {"examples": examples, "nodes": nodes, "edges": edges}


SMALL_A = os.path.join(ROOT, "fixtures", "small-a")
REALISTIC_EDGE_FLOOR = 0.01


def realistic_circuit(aggregation):
    """fixtures/small-a's IG circuit (PyTorch reference) in the layout feature-circuits saves."""
    with open(os.path.join(SMALL_A, "ref", f"ig_{aggregation}.json")) as f:
        ref = json.load(f)
    with open(os.path.join(SMALL_A, "data.jsonl")) as f:
        examples = [json.loads(line) for line in f if line.strip()]
    seq = ref["seq_len"]
    nodes = {}
    for sub in ref["submodules"]:
        n = ref["nodes"][sub]
        act = torch.tensor(n["act"], dtype=torch.float32)
        resc = torch.tensor([n["err"]] if aggregation == "sum" else [[e] for e in n["err"]], dtype=torch.float32)
        nodes[sub] = SparseAct(act=act, resc=resc)
    edges = {}
    for up, downs in ref["edges"].items():
        f_up = ref["d_sae"][up] + 1
        for down, e in downs.items():
            if down == "y":
                dense = torch.tensor(e["dense"], dtype=torch.float32)
                edges.setdefault(up, {})["y"] = dense.to_sparse().coalesce()
                continue
            f_down = ref["d_sae"][down] + 1
            kept = [x for x in e["entries"] if abs(x[-1]) > REALISTIC_EDGE_FLOOR]
            shape = (f_down, f_up) if aggregation == "sum" else (seq, f_down, seq, f_up)
            idx = torch.tensor([x[:-1] for x in kept], dtype=torch.int64).reshape(-1, len(shape)).t()
            val = torch.tensor([x[-1] for x in kept], dtype=torch.float32)
            edges.setdefault(up, {})[down] = torch.sparse_coo_tensor(idx, val, shape).coalesce()
    return {"examples": examples[:ref["n_examples"]], "nodes": nodes, "edges": edges}


def make_realistic_circuits(out):
    os.makedirs(os.path.join(out, "circuits"), exist_ok=True)
    for aggregation in ("sum", "none"):
        c = realistic_circuit(aggregation)
        with storages_on("cuda:0"):
            save_torch(c, os.path.join(out, "circuits", f"small-a_agreement_n40_agg{aggregation}_node0.1.pt"))
    # --nodes_only: edges is None
    c = realistic_circuit("sum")
    c["edges"] = None
    with storages_on("cuda:0"):
        save_torch(c, os.path.join(out, "circuits", "small-a_agreement_n40_aggsum_nodeall.pt"))


def circuit_expected(c):
    nodes = {}
    for name, sa in c["nodes"].items():
        e = {"act": dense_entry(sa.act)}
        if sa.resc is not None:
            e["resc"] = dense_entry(sa.resc)
        if sa.res is not None:
            e["res"] = dense_entry(sa.res)
        nodes[name] = e
    edges = {}
    for up, downs in c["edges"].items():
        edges[up] = {}
        for down, t in downs.items():
            edges[up][down] = sparse_entry(t) if t.is_sparse else {"kind": "tensor", **dense_entry(t)}
    return {"nodes": nodes, "edges": edges, "examples": c["examples"]}


@contextlib.contextmanager
def storages_on(location):
    """Tag every storage with `location` (e.g. cuda:0) as if the tensors lived on a GPU."""
    import torch.serialization as ser
    real = ser.location_tag
    ser.location_tag = lambda storage: location
    try:
        yield
    finally:
        ser.location_tag = real


# ---------------------------------------------------------------- malicious pickles

MARKERS = {
    "os_system": "/tmp/sfc-test-marker-os-system",
    "posix_system": "/tmp/sfc-test-marker-posix-system",
    "builtins_eval": "/tmp/sfc-test-marker-builtins-eval",
    "subprocess_popen": "/tmp/sfc-test-marker-subprocess-popen",
    "exec_proto4": "/tmp/sfc-test-marker-exec-proto4",
    "evil_thing": "/tmp/sfc-test-marker-evil-thing",
}


def binunicode(s):
    b = s.encode("utf-8")
    return b"X" + struct.pack("<I", len(b)) + b


def evil_pickles():
    out = {}
    # 1. by hand: {"weight": os.system("touch MARKER")} -- GLOBAL 'os system', TUPLE1, REDUCE
    out["os_system"] = ("os.system",
                        b"\x80\x02}q\x00" + binunicode("weight") + b"q\x01cos\nsystem\nq\x02"
                        + binunicode(f"touch {MARKERS['os_system']}") + b"\x85q\x03Rq\x04s.")

    class PosixSystem:
        def __reduce__(self):
            return (os.system, (f"touch {MARKERS['posix_system']}",))

    out["posix_system"] = ("posix.system", pickle.dumps({"encoder.weight": PosixSystem()}, protocol=2))

    class Eval:
        def __reduce__(self):
            return (eval, (f"open({MARKERS['builtins_eval']!r}, 'w').close()",))

    out["builtins_eval"] = ("builtins.eval", pickle.dumps(OrderedDict(w=Eval()), protocol=2))

    class Popen:
        def __reduce__(self):
            return (subprocess.Popen, (["touch", MARKERS["subprocess_popen"]],))

    out["subprocess_popen"] = ("subprocess.Popen", pickle.dumps([1, 2, Popen()], protocol=2))

    class Exec:
        def __reduce__(self):
            return (exec, (f"open({MARKERS['exec_proto4']!r}, 'w').close()",))

    out["exec_proto4"] = ("builtins.exec", pickle.dumps({"a": 1, "b": Exec()}, protocol=4))

    evil = types.ModuleType("evil")

    class Thing:
        def __setstate__(self, state):  # would run if the class could be imported
            open(MARKERS["evil_thing"], "w").close()

    Thing.__module__ = "evil"
    Thing.__qualname__ = "Thing"
    evil.Thing = Thing
    sys.modules["evil"] = evil
    thing = Thing()
    thing.cmd = f"touch {MARKERS['evil_thing']}"  # non-empty state, so pickle emits BUILD -> __setstate__
    out["evil_thing"] = ("evil.Thing", pickle.dumps({"cfg": thing}, protocol=2))
    del sys.modules["evil"]
    return out


def torch_like_zip(path, pkl):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr(zipfile.ZipInfo("archive/data.pkl", date_time=(2024, 1, 1, 0, 0, 0)), pkl)
        z.writestr(zipfile.ZipInfo("archive/version", date_time=(2024, 1, 1, 0, 0, 0)), b"3\n")


def check_payload(name, pkl):
    """Prove the payload is live: Python's pickle runs it (in a child process) and makes the marker."""
    marker = MARKERS[name]
    if os.path.exists(marker):
        os.remove(marker)
    if name == "evil_thing":
        code = "\n".join([
            "import pickle, sys, types",
            "m = types.ModuleType('evil')",
            "class Thing:",
            f"    def __setstate__(self, s): open({marker!r}, 'w').close()",
            "Thing.__module__ = 'evil'",
            "m.Thing = Thing",
            "sys.modules['evil'] = m",
            "pickle.loads(sys.stdin.buffer.read())"])
    else:
        code = "import pickle,sys,time;pickle.loads(sys.stdin.buffer.read());time.sleep(0.3)"
    subprocess.run([sys.executable, "-c", code], input=pkl, check=True)
    ok = os.path.exists(marker)
    if ok:
        os.remove(marker)
    if not ok:
        raise SystemExit(f"payload {name} did not create {marker}")


# ---------------------------------------------------------------- corrupt torch files

class RawTensor:
    """Pickles as torch._utils._rebuild_tensor_v2 with arbitrary (hostile) arguments over a real storage."""

    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, size, stride, False, OrderedDict())

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)


def rewrite_zip(src, dst, drop=(), replace=None, deflate=()):
    """Copy a zip, dropping / replacing / deflating some entries (names relative to the prefix)."""
    replace = replace or {}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        prefix = zin.namelist()[0].split("/")[0]
        for name in zin.namelist():
            rel = name[len(prefix) + 1:]
            if rel in drop:
                continue
            data = replace.get(rel, zin.read(name))
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED if rel in deflate else zipfile.ZIP_STORED
            zout.writestr(info, data)


def patch_declared_size(path, entry_suffix, new_size):
    """Overwrite the uncompressed size of one entry in the central directory and local header."""
    b = bytearray(open(path, "rb").read())
    with zipfile.ZipFile(path) as z:
        info = [i for i in z.infolist() if i.filename.endswith(entry_suffix)][0]
    name = info.filename.encode()
    p = 0
    while True:
        p = b.find(b"PK\x01\x02", p)
        if p < 0:
            raise SystemExit("central entry not found")
        n = struct.unpack_from("<H", b, p + 28)[0]
        if bytes(b[p + 46:p + 46 + n]) == name:
            struct.pack_into("<I", b, p + 24, new_size)
            break
        p += 4
    lh = info.header_offset
    struct.pack_into("<I", b, lh + 22, new_size)
    open(path, "wb").write(bytes(b))


def make_bad(out):
    bad = os.path.join(out, "bad")
    os.makedirs(bad, exist_ok=True)
    exp = {}
    st = torch.arange(4, dtype=torch.float32).storage()

    def save(name, obj, why):
        save_torch(obj, os.path.join(bad, name))
        exp[f"bad/{name}"] = why

    save("oob_view.pt", {"w": RawTensor(st, 0, (1000, 1000), (1000, 1))}, "reaches past its storage")
    save("huge_shape.pt", {"w": RawTensor(st, 0, (2 ** 40, 2 ** 40), (1, 1))}, "elements")
    save("offset_oob.pt", {"w": RawTensor(st, 10, (1,), (1,))}, "reaches past its storage")
    save("negative_size.pt", {"w": RawTensor(st, 0, (-1,), (1,))}, "(-1) is not a tuple of non-negative integers")
    save("expanded_huge.pt", {"w": RawTensor(st, 0, (2 ** 15, 2 ** 15), (0, 0))}, "expanded views")
    with tempfile.TemporaryDirectory() as tmpdir:
        src = os.path.join(tmpdir, "ok.pt")
        save_torch({"w": torch.arange(6, dtype=torch.float32)}, src)
        rewrite_zip(src, os.path.join(bad, "missing_storage.pt"), drop=("data/0",))
        exp["bad/missing_storage.pt"] = "missing from the archive"
        rewrite_zip(src, os.path.join(bad, "short_storage.pt"), replace={"data/0": b"\0" * 20})
        exp["bad/short_storage.pt"] = "should hold 6 float32 elements"
        rewrite_zip(src, os.path.join(bad, "zip_bomb.pt"), deflate=("data.pkl",))
        patch_declared_size(os.path.join(bad, "zip_bomb.pt"), "data.pkl", 0xFFFFFFF0)
        exp["bad/zip_bomb.pt"] = "beyond what deflate can produce"
    return exp


def write_zip64_npz(path, arrays):
    """np.savez with zipfile's zip64 thresholds lowered, so every record is written in zip64 form."""
    limit, count = zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT
    zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = 16, 1
    try:
        with fixed_clock():
            np.savez(path, **arrays)
    finally:
        zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = limit, count
    raw = open(path, "rb").read()
    assert b"PK\x06\x06" in raw and b"PK\x06\x07" in raw, "zip64 end records missing"


# ---------------------------------------------------------------- numpy files

def make_numpy(out, rng):
    exp = {}
    be = (np.arange(6, dtype=np.float32).reshape(2, 3) * 0.5 - 1.25).astype(">f4")
    np.save(os.path.join(out, "be_f4.npy"), be)
    exp["be_f4.npy"] = np_entry(be)
    be8 = np.array([1, -2, 2 ** 40, -(2 ** 50)], dtype=">i8")
    np.save(os.path.join(out, "be_i8.npy"), be8)
    exp["be_i8.npy"] = np_entry(be8)
    fo = np.asfortranarray(rng.standard_normal((3, 4)))
    assert fo.flags.f_contiguous and not fo.flags.c_contiguous
    np.save(os.path.join(out, "fortran_f8.npy"), fo)
    exp["fortran_f8.npy"] = np_entry(fo)
    fo3 = np.asfortranarray(np.arange(24, dtype=np.int32).reshape(2, 3, 4) - 5)
    np.save(os.path.join(out, "fortran_i4_3d.npy"), fo3)
    exp["fortran_i4_3d.npy"] = np_entry(fo3)
    for ver in ((2, 0), (3, 0)):
        a = rng.standard_normal((2, 2)).astype(np.float16)
        name = f"v{ver[0]}_header.npy"
        with open(os.path.join(out, name), "wb") as f:
            np.lib.format.write_array(f, a, version=ver)
        exp[name] = np_entry(a)

    # Gemma Scope-style params, np.savez (stored entries)
    d, f = 8, 16
    params = {
        "W_enc": rng.standard_normal((d, f)).astype(np.float32) * 0.3,
        "W_dec": rng.standard_normal((f, d)).astype(np.float32) * 0.3,
        "b_enc": rng.standard_normal(f).astype(np.float32) * 0.1,
        "b_dec": rng.standard_normal(d).astype(np.float32) * 0.1,
        "threshold": np.abs(rng.standard_normal(f)).astype(np.float32),
    }
    with fixed_clock():
        np.savez(os.path.join(out, "params.npz"), **params)
    exp["params.npz"] = {k: np_entry(v) for k, v in params.items()}

    mixed = {
        "f2": rng.standard_normal(5).astype(np.float16),
        "f4": rng.standard_normal((2, 3)).astype(np.float32),
        "f8": rng.standard_normal(3),
        "be_f4": rng.standard_normal(4).astype(">f4"),
        "i1": np.array([-5, 7], dtype=np.int8),
        "i2": np.array([-300, 301], dtype=np.int16),
        "i4": np.array([[1, -2], [3, 2 ** 31 - 1]], dtype=np.int32),
        "i8": np.array([2 ** 40, -3], dtype=np.int64),
        "u1": np.array([0, 200, 255], dtype=np.uint8),
        "u2": np.array([0, 65535], dtype=np.uint16),
        "u4": np.array([0, 2 ** 32 - 1], dtype=np.uint32),
        "b1": np.array([True, False, False, True]),
        "scalar": np.array(2.5, dtype=np.float32),
        "empty": np.zeros((0, 4), dtype=np.float32),
        "fortran": np.asfortranarray(rng.standard_normal((2, 5)).astype(np.float32)),
        "zeros": np.zeros(2000, dtype=np.float32),  # compresses well: a real deflate stream
    }
    with fixed_clock():
        np.savez_compressed(os.path.join(out, "mixed_compressed.npz"), **mixed)
    exp["mixed_compressed.npz"] = {k: np_entry(v) for k, v in mixed.items()}
    z64 = {"a": rng.standard_normal((3, 4)).astype(np.float32), "b": np.arange(5, dtype=np.int64)}
    write_zip64_npz(os.path.join(out, "zip64.npz"), z64)
    exp["zip64.npz"] = {k: np_entry(v) for k, v in z64.items()}
    with zipfile.ZipFile(os.path.join(out, "mixed_compressed.npz")) as z:
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in z.infolist())
    with zipfile.ZipFile(os.path.join(out, "params.npz")) as z:
        assert all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist())
    return exp


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--no-payload-check", action="store_true", help="skip running the malicious pickles in a child Python")
    args = ap.parse_args()
    out = args.out
    os.makedirs(os.path.join(out, "evil"), exist_ok=True)
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1234)
    rng = np.random.default_rng(1234)
    expected = {"format": "sfc.dict-test-data/v1", "torch_version": torch.__version__, "numpy_version": np.__version__,
                "torch": {}, "numpy": {}, "evil": {}}

    tensors = make_tensors(g)
    save_torch(tensors, os.path.join(out, "tensors.pt"))
    expected["torch"]["tensors.pt"] = {k: {**dense_entry(v), "requires_grad": bool(v.requires_grad)} for k, v in tensors.items()}

    ae, sd, backup = make_backup(g)
    save_torch(sd, os.path.join(out, "ae.pt"))
    expected["torch"]["ae.pt"] = flat(sd)
    save_torch(backup, os.path.join(out, "backup.pt"))
    expected["torch"]["backup.pt"] = flat(backup)
    expected["backup_config"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in backup["config"].items()}
    expected["backup_param_groups"] = [
        {k: (list(v) if isinstance(v, tuple) else v) for k, v in pg.items()} for pg in backup["optimizer"]["param_groups"]]

    sparse = make_sparse(g)
    save_torch(sparse, os.path.join(out, "sparse.pt"))
    expected["torch"]["sparse.pt"] = {k: sparse_entry(v) for k, v in sparse.items()}

    be_src = {
        "a": torch.randn(2, 3, generator=g),
        "b": torch.randn(4, generator=g).half(),
        "c": torch.tensor([1, -2, 2 ** 40], dtype=torch.int64),
        "d": torch.randn(2, generator=g).bfloat16(),
        "e": torch.randn(2, generator=g, dtype=torch.float64),
        "t": torch.randn(2, 3, generator=g).t(),
        "u": torch.tensor([1, 2, 250], dtype=torch.uint8),
    }
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = os.path.join(tmpdir, "bigendian.pt")  # archive prefix "bigendian"
        save_torch(be_src, tmp)
        byteswap_zip(tmp, os.path.join(out, "bigendian.pt"), storage_itemsizes(be_src.values()))
    expected["torch"]["bigendian.pt"] = {k: dense_entry(v) for k, v in be_src.items()}

    p4 = {"x": torch.randn(3, generator=g), "nested": {"y": torch.randn(2, 2, generator=g).half(), "n": [1, 2.5, "s", None]}}
    save_torch(p4, os.path.join(out, "proto4.pt"), pickle_protocol=4)
    expected["torch"]["proto4.pt"] = flat(p4)

    save_torch({"w": torch.ones(2)}, os.path.join(out, "legacy.pt"), _use_new_zipfile_serialization=False)

    circuit = make_circuit(g)
    with storages_on("cuda:0"):
        save_torch(circuit, os.path.join(out, "circuit.pt"))
    expected["circuit.pt"] = circuit_expected(circuit)
    with zipfile.ZipFile(os.path.join(out, "circuit.pt")) as z:
        pkl = z.read([n for n in z.namelist() if n.endswith("/data.pkl")][0])
        assert b"cuda:0" in pkl and b"activation_utils" in pkl and b"SparseAct" in pkl
    make_realistic_circuits(out)

    for name, (glob, pkl) in evil_pickles().items():
        if not args.no_payload_check:
            check_payload(name, pkl)
        torch_like_zip(os.path.join(out, "evil", f"{name}.pt"), pkl)
        expected["evil"][f"evil/{name}.pt"] = {"global": glob, "marker": MARKERS[name]}

    expected["numpy"] = make_numpy(out, rng)
    expected["bad"] = make_bad(out)

    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, separators=(",", ":"), sort_keys=True)
        f.write("\n")

    total = 0
    for dirpath, _, files in os.walk(out):
        for fn in files:
            total += os.path.getsize(os.path.join(dirpath, fn))
    print(f"wrote {out}: {total} bytes")
    if total >= 500_000:
        raise SystemExit("test data over the 500 KB budget")


if __name__ == "__main__":
    main()
