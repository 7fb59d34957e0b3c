#!/usr/bin/env python3
"""Write the PyTorch reference snapshots that the C# implementation is checked against.

    /usr/bin/python3 reference/make_snapshots.py [--out DIR] [--kernel-set all|default|avx2|avx512]

Default: every CPU kernel set this CPU can run, each in its own process, into DIR/<kernel set>/
(DIR defaults to reference/snapshots/), then DIR/kernel_floors.json, the differences between the
kernel sets' own float32 results (PyTorch's cross-kernel floor).

A kernel set is what libtorch dispatches to: ATEN_CPU_CAPABILITY=default|avx2|avx512 for ATen's
kernels, with oneDNN (ONEDNN_MAX_CPU_ISA / DNNL_MAX_CPU_ISA) and MKL (MKL_ENABLE_INSTRUCTIONS)
capped at the same level, so that the process computes as on a CPU of that level. Float32 results,
the initial weights included (normal_ is vectorised), differ in their last bits between kernel sets;
the C# tests read the folder of the kernel set their own libtorch runs with.

Everything runs with torch.set_num_threads(1) (except the explicitly 2-thread curves), seed 0,
and the model of resnet_mnist.build_model("none", 1, 10) built right after torch.manual_seed(0).
The fixed input is the embedded sample data/MNIST/raw/train-images-idx3-ubyte.gz (and labels),
converted as transforms.ToTensor() does: float32(byte) / 255, shape N x 1 x 28 x 28.

Tensor record: {"shape", "dtype", "sum", "abs_sum", "max_abs", "sample"} where sum and abs_sum
are computed in float64 and sample holds the contiguous flattened tensor at the indices
    k = min(n, K);  idx_i = (i * (n - 1)) // (k - 1) for i in 0..k-1   (idx_0 = 0 when k == 1)
with integer arithmetic. See reference/README.md for every file's layout.
"""
import argparse
import copy
import subprocess
import hashlib
import json
import os
import sys
import time

import torch
import torch.nn as nn
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import resnet_mnist as rm  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DATA_ROOT = os.path.join(REPO, "data")
SEED = 0
THREADS = 1
LAYERS = ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", "fc"]
CURVE_STEPS = 30
CURVE_BATCH = 32
MODEL_DESC = ("torch.manual_seed(0); m = torchvision.models.resnet18(); "
              "m.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False); "
              "m.fc = nn.Linear(512, 10)")


KERNEL_SETS = ["default", "avx2", "avx512"]
# oneDNN and MKL limits matching each ATen kernel set (the C# side applies the same: src/Native/KernelSet.cs).
KERNEL_LIMITS = {"default": ("SSE41", "SSE4_2"), "avx2": ("AVX2", "AVX2"), "avx512": ("AVX512_CORE", "AVX512")}
CAPABILITY_NAMES = {"NO AVX": "default", "DEFAULT": "default", "AVX2": "avx2", "AVX512": "avx512"}


# ----------------------------------------------------------------------------- kernel sets

def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def supported_kernel_sets():
    """The kernel sets this CPU can execute (libtorch's own rule for AVX-512: F, VL, BW, DQ and FMA)."""
    flags = cpu_flags()
    sets = ["default"]
    if {"avx2", "fma"} <= flags:
        sets.append("avx2")
    if {"avx512f", "avx512vl", "avx512bw", "avx512dq", "fma"} <= flags:
        sets.append("avx512")
    return sets


def kernel_env(kernel_set, base=None):
    env = dict(os.environ if base is None else base)
    onednn, mkl = KERNEL_LIMITS[kernel_set]
    env.update(ATEN_CPU_CAPABILITY=kernel_set, ONEDNN_MAX_CPU_ISA=onednn, DNNL_MAX_CPU_ISA=onednn,
               MKL_ENABLE_INSTRUCTIONS=mkl)
    return env


def running_kernel_set():
    """The kernel set this process's torch reports (torch.__config__.show(): 'CPU capability usage: ...')."""
    for line in torch.__config__.show().splitlines():
        if "CPU capability usage:" in line:
            return CAPABILITY_NAMES.get(line.split(":", 1)[1].strip().upper())
    return None


# ----------------------------------------------------------------------------- helpers

def sample_indices(n, K):
    k = min(n, K)
    if k == 1:
        return [0]
    return [(i * (n - 1)) // (k - 1) for i in range(k)]


def dtype_name(t):
    return str(t.dtype).replace("torch.", "")


def record(t, K):
    t = t.detach().contiguous()
    flat = t.reshape(-1)
    d = flat.to(torch.float64)
    idx = sample_indices(flat.numel(), K)
    return {
        "shape": list(t.shape),
        "dtype": dtype_name(t),
        "sum": float(d.sum().item()),
        "abs_sum": float(d.abs().sum().item()),
        "max_abs": float(d.abs().max().item()),
        "sample": [float(v) for v in d[idx].tolist()],
    }


def hash_record(t):
    t = t.detach().contiguous()
    return {
        "shape": list(t.shape),
        "dtype": dtype_name(t),
        "sha256": hashlib.sha256(t.numpy().tobytes()).hexdigest(),
        "sum": float(t.to(torch.float64).sum().item()),
    }


def meta(**extra):
    m = {
        "kernel_set": running_kernel_set(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "threads": THREADS,
        "seed": SEED,
        "model": MODEL_DESC,
    }
    m.update(extra)
    return m


def fresh_model():
    torch.manual_seed(SEED)
    return rm.build_model("none", 1, 10)


def load_train(n):
    images, labels = rm.load_idx(DATA_ROOT, "mnist", train=True)
    x = images[:n].unsqueeze(1).to(torch.float32).div(255)  # transforms.ToTensor() semantics
    y = labels[:n].to(torch.int64)
    return x, y


def _dumps(obj, indent=0):
    """JSON with one line per record / list / scalar: compact, yet line-diffable."""
    if isinstance(obj, dict) and obj and not ("shape" in obj and "dtype" in obj):
        pad = " " * (indent + 1)
        items = [f"{pad}{json.dumps(k)}: {_dumps(v, indent + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    return json.dumps(obj, separators=(",", ":"))


def write(out_dir, name, obj):
    path = os.path.join(out_dir, name)
    with open(path, "w") as f:
        f.write(_dumps(obj) + "\n")
    return path


BATCH_DESC = ("first 8 images and labels of data/MNIST/raw/train-images-idx3-ubyte.gz / "
              "train-labels-idx1-ubyte.gz, float32(byte)/255 (transforms.ToTensor), shape 8x1x28x28")


# ----------------------------------------------------------------------------- snapshots

def snap_init(out_dir):
    model = fresh_model()
    sd = model.state_dict()
    write(out_dir, "init.json", {
        "meta": meta(input="none (parameters and buffers right after construction)", count=len(sd)),
        "tensors": {k: hash_record(v) for k, v in sd.items()},
    })
    torch.manual_seed(SEED)
    sd = torchvision.models.resnet18().state_dict()
    write(out_dir, "init_imagenet.json", {
        "meta": meta(input="none (parameters and buffers right after construction)", count=len(sd),
                     model="torch.manual_seed(0); torchvision.models.resnet18()  (3 channels, 1000 classes)"),
        "tensors": {k: hash_record(v) for k, v in sd.items()},
    })
    return len(model.state_dict())


def capture_forward(model, x):
    captured, raw = {}, {}
    hooks = []
    for name in LAYERS:
        def hook(module, inputs, output, name=name):
            captured[name] = output.detach().clone()
            raw[name] = output  # kept uncloned only to see what in-place ops do to it later
        hooks.append(getattr(model, name).register_forward_hook(hook))
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    changed = sorted(n for n in LAYERS if not torch.equal(raw[n], captured[n]))
    return captured, changed


def snap_forward(out_dir, x):
    notes = {}
    model = fresh_model()
    model.eval()
    outs, changed = capture_forward(model, x)
    notes["eval"] = changed
    write(out_dir, "forward_eval.json", {
        "meta": meta(input=BATCH_DESC, mode="eval", K=256,
                     capture="forward hooks on the top-level children, output cloned inside the hook "
                             "(bn1's output is later overwritten by the in-place relu)"),
        "layers": {n: record(outs[n], 256) for n in LAYERS},
    })
    model = fresh_model()
    model.train()
    outs, changed = capture_forward(model, x)
    notes["train"] = changed
    running = {k: record(v, 64) for k, v in model.state_dict().items()
               if k.endswith("running_mean") or k.endswith("running_var")}
    write(out_dir, "forward_train.json", {
        "meta": meta(input=BATCH_DESC, mode="train", K=256, K_running_stats=64,
                     capture="forward hooks on the top-level children, output cloned inside the hook "
                             "(bn1's output is later overwritten by the in-place relu); running_stats "
                             "after that single train-mode forward (momentum 0.1)"),
        "layers": {n: record(outs[n], 256) for n in LAYERS},
        "running_stats": running,
    })
    return notes


def snap_gradients_and_step(out_dir, x, y):
    model = fresh_model()
    model.train()
    loss = nn.CrossEntropyLoss()(model(x), y)
    loss.backward()
    params = list(model.named_parameters())
    write(out_dir, "gradients.json", {
        "meta": meta(input=BATCH_DESC, mode="train", K=64,
                     what="nn.CrossEntropyLoss()(model(x), y).backward() on a fresh model"),
        "loss": float(loss.item()),
        "grads": {n: record(p.grad, 64) for n, p in params},
    })

    def stepped(make_opt):
        m = copy.deepcopy(model)  # deepcopy does not copy .grad: set it explicitly
        for (_, p_src), p_dst in zip(params, m.parameters()):
            p_dst.grad = p_src.grad.clone()
        opt = make_opt(m.parameters())
        opt.step()
        return {n: record(p, 64) for n, p in m.named_parameters()}

    write(out_dir, "optimizer_step.json", {
        "meta": meta(input=BATCH_DESC, K=64,
                     what="from the state of gradients.json (seed-0 parameters, their gradients), one "
                          "step of each optimizer on its own copy; parameters after the step"),
        "sgd": stepped(lambda ps: torch.optim.SGD(ps, lr=0.01, momentum=0.9)),
        "adam": stepped(lambda ps: torch.optim.Adam(ps, lr=1e-3)),
    })
    return len(params)


def snap_float64(out_dir, x, y):
    """Layer outputs (eval and train mode) and one backward pass in float64: the seed-0 model built in float32,
    then .to(torch.float64) (as train.dtype: float64 does), the same 8 images in float64."""
    x64 = x.to(torch.float64)
    layers = {}
    for mode in ("eval", "train"):
        model = fresh_model().to(torch.float64)
        model.train(mode == "train")
        outs, _ = capture_forward(model, x64)
        layers[mode] = {n: record(outs[n], 256) for n in LAYERS}
    write(out_dir, "forward_float64.json", {
        "meta": meta(input=BATCH_DESC + ", then .to(torch.float64)", K=256,
                     model_dtype="float64 (built in float32, then .to(torch.float64))",
                     capture="forward hooks on the top-level children, output cloned inside the hook"),
        "layers": layers,
    })
    model = fresh_model().to(torch.float64)
    model.train()
    loss = nn.CrossEntropyLoss()(model(x64), y)
    loss.backward()
    write(out_dir, "gradients_float64.json", {
        "meta": meta(input=BATCH_DESC + ", then .to(torch.float64)", mode="train", K=64,
                     what="nn.CrossEntropyLoss()(model(x), y).backward() on a fresh float64 model"),
        "loss": float(loss.item()),
        "grads": {n: record(p.grad, 64) for n, p in model.named_parameters()},
    })


# Optimizers whose every option changes the compared step when it starts from a non-empty state.
STATE_STEP_OPTIMIZERS = {
    "sgd_momentum": dict(cls="SGD", lr=0.01, momentum=0.9),
    "sgd_nesterov_wd": dict(cls="SGD", lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4),
    "adam_betas_wd": dict(cls="Adam", lr=1e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=1e-4),
    "adamw": dict(cls="AdamW", lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05),
}
STATE_STEPS = 4  # steps 1..3 build momentum / moment estimates; step 4 is the one written out
STATE_BATCH = 8
# The parameters whose elements feed the step (first conv, a deep conv, BatchNorm weights and biases, the classifier),
# STATE_K sampled elements of each (sample_indices): 178 elements per optimizer.
STATE_TENSORS = ["conv1.weight", "bn1.weight", "layer1.0.conv1.weight", "layer3.0.bn1.bias", "layer3.0.conv2.weight",
                 "layer4.1.bn2.weight", "fc.weight", "fc.bias"]
STATE_K = 24
STATE_BUFFERS = {"SGD": ["momentum_buffer"], "Adam": ["exp_avg", "exp_avg_sq"], "AdamW": ["exp_avg", "exp_avg_sq"]}


def exact(t):
    """A float64 tensor as a list of Python floats (repr round-trips float64 exactly)."""
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def snap_optimizer_state_step(out_dir):
    """Float64, one optimizer step from a non-empty state, on inputs both sides read: the seed-0 model trains
    STATE_STEPS - 1 steps with each optimizer on fixed batches (images [8i, 8i+8)), then the gradients of step
    STATE_STEPS are computed. For STATE_K sampled elements of each STATE_TENSORS parameter the file holds the
    parameters, gradients, optimizer state (momentum buffer or exp_avg / exp_avg_sq, and the step count) at that
    point, and the result of one step of a fresh optimizer of the same class and options over exactly those
    elements (its state loaded from them): the parameters and state after the step. Momentum, nesterov, betas,
    eps and weight decay all change that step once the optimizer holds state."""
    x_all, y_all = load_train(STATE_STEPS * STATE_BATCH)
    out = {}
    for name, spec in STATE_STEP_OPTIMIZERS.items():
        model = fresh_model().to(torch.float64)
        model.train()
        kwargs = {k: v for k, v in spec.items() if k != "cls"}
        make = lambda ps: getattr(torch.optim, spec["cls"])(ps, **kwargs)  # noqa: E731
        opt = make(model.parameters())
        for i in range(STATE_STEPS):
            x = x_all[STATE_BATCH * i: STATE_BATCH * (i + 1)].to(torch.float64)
            y = y_all[STATE_BATCH * i: STATE_BATCH * (i + 1)]
            opt.zero_grad()
            loss = nn.CrossEntropyLoss()(model(x), y)
            loss.backward()
            if i < STATE_STEPS - 1:
                opt.step()
        named = dict(model.named_parameters())
        buffers = STATE_BUFFERS[spec["cls"]]
        # The inputs: sampled elements of each tensor, as new standalone tensors.
        params, inputs = [], {}
        for tname in STATE_TENSORS:
            p = named[tname]
            idx = torch.tensor(sample_indices(p.numel(), STATE_K))
            q = p.detach().reshape(-1)[idx].clone().requires_grad_(True)
            q.grad = p.grad.reshape(-1)[idx].clone()
            state = opt.state[p]
            inputs[tname] = {"param": exact(q), "grad": exact(q.grad),
                             **{b: exact(state[b].reshape(-1)[idx]) for b in buffers}}
            params.append((tname, q, {b: state[b].reshape(-1)[idx].clone() for b in buffers},
                           state.get("step")))
        step_opt = make([q for _, q, _, _ in params])
        steps = set()
        for tname, q, bufs, step in params:
            st = dict(bufs)
            if step is not None:
                st["step"] = step.clone()
                steps.add(int(step.item()))
            step_opt.state[q] = st
        with torch.no_grad():
            step_opt.step()
        outputs = {tname: {"param": exact(q), **{b: exact(step_opt.state[q][b]) for b in buffers}}
                   for tname, q, _, _ in params}
        out[name] = {
            "optimizer": {k: (list(v) if isinstance(v, tuple) else v) for k, v in spec.items()},
            "step_before": steps.pop() if steps else None,
            "inputs": inputs,
            "outputs": outputs,
        }
    write(out_dir, "optimizer_state_step.json", {
        "meta": meta(input=f"the state before step {STATE_STEPS} of training the seed-0 model (built in float32, then "
                           f".to(torch.float64)) with each optimizer on images [{STATE_BATCH}*i, {STATE_BATCH}*i+"
                           f"{STATE_BATCH}) of data/MNIST/raw/train-*.gz (float32(byte)/255 then float64), "
                           f"step {STATE_STEPS}'s gradients computed; K={STATE_K} sampled elements of {', '.join(STATE_TENSORS)}",
                     K=STATE_K,
                     what="per optimizer: 'inputs' = parameters, gradients and state (float64, exact) of the sampled "
                          "elements, 'step_before' = the state's step count (Adam/AdamW; null for SGD); 'outputs' = "
                          "parameters and state after one step of a fresh optimizer of the same class and options "
                          "over those elements as standalone 1-d tensors, its state loaded from 'inputs'"),
        "optimizers": out,
    })


def write_floors(out_dir, sets):
    """PyTorch's cross-kernel floor: per float32 tensor record, the largest difference between any two kernel sets'
    sampled elements (absolute, and relative to the larger |value|)."""
    files = {"forward_eval.json": ["layers"], "forward_train.json": ["layers", "running_stats"],
             "gradients.json": ["grads"], "optimizer_step.json": ["sgd", "adam"]}
    loaded = {}
    for ks in sets:
        for f in files:
            with open(os.path.join(out_dir, ks, f)) as fh:
                loaded[(ks, f)] = json.load(fh)
    floors = {}
    for f, sections in files.items():
        floors[f] = {}
        for sec in sections:
            floors[f][sec] = {}
            for key in loaded[(sets[0], f)][sec]:
                worst_abs = worst_rel = 0.0
                for i, a in enumerate(sets):
                    for b in sets[i + 1:]:
                        ra, rb = loaded[(a, f)][sec][key], loaded[(b, f)][sec][key]
                        for u, v in zip(ra["sample"] + [ra["max_abs"]], rb["sample"] + [rb["max_abs"]]):
                            d = abs(u - v)
                            worst_abs = max(worst_abs, d)
                            worst_rel = max(worst_rel, d / max(abs(u), abs(v), 1e-30))
                floors[f][sec][key] = {"abs": worst_abs, "rel": worst_rel}
    write(out_dir, "kernel_floors.json", {
        "meta": {"kernel_sets": sets, "torch": torch.__version__,
                 "what": "per tensor record: max |a - b| over the sampled elements and max |x| of every pair of "
                         "kernel sets' float32 snapshots (abs), and that difference relative to the larger |value| "
                         "(rel)"},
        "floors": floors,
    })


def curve(opt_name, dtype, x_all, y_all):
    model = fresh_model().to(dtype)
    model.train()
    if opt_name == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    criterion = nn.CrossEntropyLoss()
    losses = []
    for i in range(CURVE_STEPS):
        x = x_all[CURVE_BATCH * i: CURVE_BATCH * (i + 1)].to(dtype)
        y = y_all[CURVE_BATCH * i: CURVE_BATCH * (i + 1)]
        opt.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        opt.step()
        losses.append(float(loss.item()))
    return losses


def snap_curves(out_dir):
    x_all, y_all = load_train(CURVE_STEPS * CURVE_BATCH)
    curves, timings = {}, {}
    for opt_name in ("sgd", "adam"):
        for dname, dtype in (("float64", torch.float64), ("float32", torch.float32)):
            t0 = time.time()
            curves[f"{opt_name}_{dname}"] = curve(opt_name, dtype, x_all, y_all)
            timings[f"{opt_name}_{dname}"] = time.time() - t0
        torch.set_num_threads(2)
        try:
            t0 = time.time()
            curves[f"{opt_name}_float32_threads2"] = curve(opt_name, torch.float32, x_all, y_all)
            timings[f"{opt_name}_float32_threads2"] = time.time() - t0
        finally:
            torch.set_num_threads(THREADS)
    noise = {}
    for opt_name in ("sgd", "adam"):
        a, b = curves[f"{opt_name}_float32"], curves[f"{opt_name}_float32_threads2"]
        noise[f"{opt_name}_float32"] = [abs(u - v) / abs(u) for u, v in zip(a, b)]
    order = ["sgd_float64", "adam_float64", "sgd_float32", "adam_float32",
             "sgd_float32_threads2", "adam_float32_threads2"]
    write(out_dir, "curves.json", {
        "meta": meta(
            input=f"{CURVE_STEPS} steps; step i (0-based) uses images and labels [{CURVE_BATCH}*i, "
                  f"{CURVE_BATCH}*i+{CURVE_BATCH}) of data/MNIST/raw/train-*.gz, no shuffling, "
                  "float32(byte)/255 then .to(dtype)",
            what="loss.item() before each optimizer step, train mode, fresh seed-0 model per run; "
                 "float64 = model built in float32 then .to(torch.float64); sgd = SGD(lr=0.01, "
                 "momentum=0.9), adam = Adam(lr=1e-3); *_threads2 = same run with "
                 "torch.set_num_threads(2); noise_floor = |1-thread - 2-thread| / |1-thread| per step"),
        "curves": {k: curves[k] for k in order},
        "noise_floor": noise,
    })
    return curves, noise, timings


def main():
    ap = argparse.ArgumentParser(description="Write the PyTorch reference snapshots.")
    ap.add_argument("--out", default=os.path.join(HERE, "snapshots"))
    ap.add_argument("--kernel-set", default="all", choices=["all"] + KERNEL_SETS,
                    help="all (default): every kernel set this CPU runs, each into OUT/<set>/; or one set, into OUT")
    ap.add_argument("--list-kernel-sets", action="store_true", help="print the kernel sets this CPU runs and exit")
    ap.add_argument("--skip-curves", action="store_true", help="skip curves.json (the slow part)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                    help="kernel sets generated at the same time (default: one per core)")
    args = ap.parse_args()
    if args.list_kernel_sets:
        print(" ".join(supported_kernel_sets()))
        return 0
    if args.kernel_set == "all":
        sets = supported_kernel_sets()
        t0 = time.time()
        # One process per kernel set (the variables must be set before torch loads); each runs single-threaded
        # (except its 2-thread curves), so up to --jobs of them run side by side. Results do not depend on it.
        pending, running = list(sets), []
        while pending or running:
            while pending and len(running) < max(1, args.jobs):
                ks = pending.pop(0)
                cmd = [sys.executable, os.path.abspath(__file__), "--kernel-set", ks, "--out", os.path.join(args.out, ks)]
                if args.skip_curves:
                    cmd.append("--skip-curves")
                print(f"== kernel set {ks}", flush=True)
                running.append((ks, subprocess.Popen(cmd, env=kernel_env(ks))))
            ks, proc = running.pop(0)
            if proc.wait() != 0:
                raise SystemExit(f"kernel set {ks}: make_snapshots.py exited with {proc.returncode}")
        if len(sets) > 1:
            write_floors(args.out, sets)
        print(f"all kernel sets ({', '.join(sets)}): {time.time() - t0:.1f} s -> {args.out}")
        return 0
    running = running_kernel_set()
    if running != args.kernel_set:
        raise SystemExit(f"torch runs the {running} kernel set, not {args.kernel_set}: "
                         f"set ATEN_CPU_CAPABILITY={args.kernel_set} (or use --kernel-set all)")
    return one_kernel_set(args)


def one_kernel_set(args):
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(THREADS)

    t0 = time.time()
    n_init = snap_init(args.out)
    x, y = load_train(8)
    notes = snap_forward(args.out, x)
    n_params = snap_gradients_and_step(args.out, x, y)
    snap_float64(args.out, x, y)
    snap_optimizer_state_step(args.out)
    print(f"init/forward/gradients/optimizer_step: {n_init} state_dict entries, {n_params} parameters, "
          f"{time.time() - t0:.1f} s")
    print(f"hooked outputs modified in place after capture (eval, train): {notes['eval']}, {notes['train']}")
    if not args.skip_curves:
        t1 = time.time()
        curves, noise, timings = snap_curves(args.out)
        print(f"curves: {time.time() - t1:.1f} s  ({', '.join(f'{k} {v:.1f} s' for k, v in timings.items())})")
        for k, v in noise.items():
            picks = ", ".join(f"step {s}: {max(v[:s]):.2e}" for s in (5, 10, 20, 30))
            print(f"noise floor {k} (max so far): {picks}")
    print(f"total {time.time() - t0:.1f} s -> {args.out}")


if __name__ == "__main__":
    sys.exit(main())
