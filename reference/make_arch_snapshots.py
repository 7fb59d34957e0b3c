#!/usr/bin/env python3
"""Reference snapshots for resnet34 and resnet50 (init and float64 forward), per kernel set.

    /usr/bin/python3 reference/make_arch_snapshots.py [--out DIR] [--kernel-set all|default|avx2|avx512] [--arch NAME]

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

ARCHS = ["resnet34", "resnet50"]
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(ms.HERE, "snapshots"))
    ap.add_argument("--kernel-set", default="all", choices=["all"] + ms.KERNEL_SETS)
    ap.add_argument("--arch", action="append", choices=ARCHS, help="default: all of " + ", ".join(ARCHS))
    args = ap.parse_args()
    archs = args.arch or ARCHS
    if args.kernel_set == "all":
        t0 = time.time()
        for ks in ms.supported_kernel_sets():
            cmd = [sys.executable, os.path.abspath(__file__), "--kernel-set", ks, "--out", os.path.join(args.out, ks)]
            for a in archs:
                cmd += ["--arch", a]
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
        path = ms.write(args.out, f"arch_{arch}.json", arch_snapshot(arch))
        print(f"{arch}: {time.time() - t0:.1f} s -> {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
