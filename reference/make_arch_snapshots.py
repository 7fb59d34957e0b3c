#!/usr/bin/env python3
"""Reference snapshots for every architecture in archs.json (init and float64 steps), per kernel set.

    /usr/bin/python3 reference/make_arch_snapshots.py [--out DIR] [--kernel-set all|default|avx2|avx512] [--arch NAME]
                                                      [--steps-only]

Writes DIR/<kernel set>/arch_<name>.json (DIR defaults to reference/snapshots/) for every kernel set this CPU runs
(make_snapshots.py's rules: one process per set, ATEN_CPU_CAPABILITY and the oneDNN/MKL caps set before torch loads).

Each file holds, for (in_channels, num_classes) = (1, 10) and (3, 1000), under "variants" -> "<c>x<k>":
  parameters, count: parameter elements and state_dict entries; input: record of INPUT(c);
  init:    torch.manual_seed(0); m = resnet_mnist.build_model("none", c, k, arch); sha256 + float64 sum of every
           state_dict tensor (in state_dict order).
  forward: the same model (seed 0 again), .to(torch.float64), eval mode and train mode, input
           INPUT(c) = torch.Generator().manual_seed(1234); torch.rand(2, c, 64, 64, generator=g, dtype=float64)
           (a private generator: the global one is not touched); per top-level layer a tensor record
           (make_snapshots.py's: shape, sum, abs_sum, max_abs, K sampled elements).
Every architecture in archs.json (resnet18 included) also gets DIR/<kernel set>/steps_<name>.json, cheap enough
for the deepest nets (wide_resnet101_2: 127M parameters):
  init:    torch.manual_seed(0); m = resnet_mnist.build_model("none", 1, 10, arch); sha256 + float64 sum of every
           state_dict tensor;
  steps:   that same model .to(torch.float64), eval mode, STEPS steps of torch.optim.SGD(lr=STEP_LR) on
           STEP_INPUT = torch.rand(2, 1, 32, 32, dtype=float64, generator=Generator().manual_seed(1234)) with
           labels STEP_LABELS and cross_entropy: per step the loss; for step 1 every top-level layer's output and
           the gradients of STEP_TENSORS; after the last step those tensors' values (records of STEP_K elements).
           Eval mode (BatchNorm with its running statistics) because train-mode BatchNorm over a batch of 2 at 32×32
           leaves layer4 2 values per channel: measured, a 1e-15 relative change of the weights then moved layer4's
           output by 1e-4 (resnext101_32x8d), so no implementation could be compared there. Train-mode forward is
           compared on the arch_ files (64×64) and in the resnet18 curves. STEP_LR: see its comment.
The arch_ files (64×64 input, both shapes, eval and train forward) exist for resnet34 and resnet50 (FORWARD_ARCHS).
Files stay small: hashes and a few statistics, never whole tensors.
"""
import argparse
import os
import subprocess
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_snapshots as ms  # noqa: E402
import resnet_mnist as rm  # noqa: E402

ARCHS = list(rm.ARCHS)
FORWARD_ARCHS = ["resnet34", "resnet50"]
STEPS = 2
STEP_HW = 32
STEP_LR = 1e-8  # eval mode at fresh BatchNorm statistics does not normalise: resnet152's layer3 reaches 1.4e5 and
                # its loss 1.9e4, so lr 0.01 gave NaN at step 2; 1e-8 keeps every net finite and still moves the weights
                # by ~1e-3 of their size, far above the 1e-10 bound the final weights are compared with
STEP_LABELS = [3, 7]
STEP_TENSORS = ["conv1.weight", "layer1.0.conv2.weight", "layer4.0.conv2.weight", "fc.weight"]
STEP_K = 16
VARIANTS = [(1, 10), (3, 1000)]
INPUT_SEED = 1234
INPUT_HW = 64
BATCH = 2
K = 64


def make_input(c):
    g = torch.Generator().manual_seed(INPUT_SEED)
    return torch.rand(BATCH, c, INPUT_HW, INPUT_HW, generator=g, dtype=torch.float64)


def build(arch, c, k):
    torch.manual_seed(ms.SEED)
    return rm.build_model("none", c, k, arch)


def arch_snapshot(arch):
    variants = {}
    for c, k in VARIANTS:
        model = build(arch, c, k)
        sd = model.state_dict()
        init = {key: ms.hash_record(v) for key, v in sd.items()}
        n_params = sum(p.numel() for p in model.parameters())
        x = make_input(c)
        forward = {}
        for mode in ("eval", "train"):
            m = build(arch, c, k).to(torch.float64)
            m.train(mode == "train")
            outs, _ = ms.capture_forward(m, x)
            forward[mode] = {n: ms.record(outs[n], K) for n in ms.LAYERS}
        variants[f"{c}x{k}"] = {"in_channels": c, "num_classes": k, "parameters": n_params,
                                "count": len(sd), "init": init, "input": ms.record(x, K), "forward_float64": forward}
    return {
        "meta": ms.meta(arch=arch, K=K,
                        model=f"torch.manual_seed(0); resnet_mnist.build_model('none', c, k, '{arch}') "
                              f"(torchvision.models.{arch}(), conv1 replaced when c != 3, fc when k != 1000)",
                        input=f"torch.rand({BATCH}, c, {INPUT_HW}, {INPUT_HW}, dtype=float64, "
                              f"generator=torch.Generator().manual_seed({INPUT_SEED}))",
                        forward="model built in float32 from the seed, then .to(torch.float64); eval and train "
                                "mode, each on a freshly built model; forward hooks on the top-level children"),
        "variants": variants,
    }


def steps_snapshot(arch):
    """Init hashes, then STEPS float64 SGD steps of the same model (see the module doc)."""
    model = build(arch, 1, 10)
    init = {key: ms.hash_record(v) for key, v in model.state_dict().items()}
    n_params = sum(p.numel() for p in model.parameters())
    model = model.to(torch.float64).eval()
    g = torch.Generator().manual_seed(INPUT_SEED)
    x = torch.rand(BATCH, 1, STEP_HW, STEP_HW, generator=g, dtype=torch.float64)
    y = torch.tensor(STEP_LABELS)
    opt = torch.optim.SGD(model.parameters(), lr=STEP_LR)
    params = dict(model.named_parameters())
    losses, layers, grads = [], {}, {}
    for step in range(STEPS):
        captured = {}
        hooks = [getattr(model, n).register_forward_hook(
            lambda mod, i, o, n=n: captured.__setitem__(n, o.detach().clone())) for n in ms.LAYERS] if step == 0 else []
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        for h in hooks:
            h.remove()
        if step == 0:
            layers = {n: ms.record(captured[n], K) for n in ms.LAYERS}
            grads = {k: ms.record(params[k].grad, STEP_K) for k in STEP_TENSORS}
        losses.append(float(loss.item()))
        opt.step()
    final = {k: ms.record(params[k], STEP_K) for k in STEP_TENSORS}
    return {
        "meta": ms.meta(arch=arch, K=K, STEP_K=STEP_K, steps=STEPS, lr=STEP_LR, labels=STEP_LABELS,
                        model=f"torch.manual_seed(0); resnet_mnist.build_model('none', 1, 10, '{arch}'), then "
                              ".to(torch.float64).eval()",
                        input=f"torch.rand({BATCH}, 1, {STEP_HW}, {STEP_HW}, dtype=float64, "
                              f"generator=torch.Generator().manual_seed({INPUT_SEED}))",
                        step=f"torch.optim.SGD(lr={STEP_LR}); zero_grad; cross_entropy(model(x), labels).backward(); step"),
        "parameters": n_params, "count": len(init), "init": init, "input": ms.record(x, K),
        "losses": losses, "layers_step1": layers, "grads_step1": grads, "final": final,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(ms.HERE, "snapshots"))
    ap.add_argument("--kernel-set", default="all", choices=["all"] + ms.KERNEL_SETS)
    ap.add_argument("--arch", action="append", choices=ARCHS, help="default: all of " + ", ".join(ARCHS))
    ap.add_argument("--steps-only", action="store_true", help="write only the steps_ files")
    args = ap.parse_args()
    archs = args.arch or ARCHS
    if args.kernel_set == "all":
        t0 = time.time()
        for ks in ms.supported_kernel_sets():
            cmd = [sys.executable, os.path.abspath(__file__), "--kernel-set", ks, "--out", os.path.join(args.out, ks)]
            for a in archs:
                cmd += ["--arch", a]
            if args.steps_only:
                cmd.append("--steps-only")
            print(f"== kernel set {ks}", flush=True)
            if subprocess.call(cmd, env=ms.kernel_env(ks)) != 0:
                raise SystemExit(f"kernel set {ks}: make_arch_snapshots.py failed")
        print(f"all kernel sets: {time.time() - t0:.1f} s -> {args.out}")
        return 0
    running = ms.running_kernel_set()
    if running != args.kernel_set:
        raise SystemExit(f"torch runs the {running} kernel set, not {args.kernel_set}: "
                         f"set ATEN_CPU_CAPABILITY={args.kernel_set} (or use --kernel-set all)")
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(ms.THREADS)
    for arch in archs:
        t0 = time.time()
        if arch in FORWARD_ARCHS and not args.steps_only:
            path = ms.write(args.out, f"arch_{arch}.json", arch_snapshot(arch))
            print(f"{arch}: {time.time() - t0:.1f} s -> {path}", flush=True)
            t0 = time.time()
        path = ms.write(args.out, f"steps_{arch}.json", steps_snapshot(arch))
        print(f"{arch} steps: {time.time() - t0:.1f} s -> {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
