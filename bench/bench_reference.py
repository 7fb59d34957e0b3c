#!/usr/bin/env python3
"""Speed and memory figures of the reference PyTorch program (reference/resnet_mnist.py), as JSON.

    /usr/bin/python3 bench/bench_reference.py CONFIG.yaml --mode steps|epoch|data [--set k=v ...]
        [--warmup 3] [--steps 10] [--batch-sizes 16,64,256] [--channels-last] [--json FILE]

It imports the reference's own functions (config, Dataset + ToTensor, DataLoader, model, optimizer, loops), so
what is timed is what the reference runs. The modes mirror `dotnet resnet-mnist bench`:
  steps  training step time at train.batch_size on fixed in-memory batches (the same work as the tool's step),
         the same with the reference's DataLoader feeding it, evaluation images/s (no grad, eval mode) on
         in-memory batches and through the reference's evaluate(), step time against batch size, and a
         forward / backward / optimizer / data split of the step;
  epoch  read the IDX files, build datasets, model and optimizer, one shuffled training epoch through the
         reference's DataLoader (its real per-sample PIL + ToTensor cost included);
  data   the data path alone: read the IDX files and draw every batch of one epoch from the DataLoader;
  optimizer  optimizer.step() alone, on the gradients of one batch (--warmup untimed, --steps timed steps).
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn as nn
from torch.utils.data import DataLoader

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
import resnet_mnist as ref  # noqa: E402


def proc_status_mib(key):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def build(cfg, channels_last):
    m, o = cfg["model"], cfg["optimizer"]
    torch.manual_seed(int(cfg["seed"]))
    model = ref.build_model(m["pretrained"], int(m["in_channels"]), int(m["num_classes"]))
    model = model.to(ref.DTYPES[cfg["train"]["dtype"]])
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = ref.make_optimizer(model.parameters(), o["name"], float(o["lr"]), float(o["momentum"]),
                                   bool(o["nesterov"]), float(o["weight_decay"]), [float(b) for b in o["betas"]])
    return model, optimizer


def as_tensors(ds, dtype):
    """The whole split as one float tensor N×1×28×28 (ToTensor's bytes / 255) and int64 labels."""
    x = ds.images.unsqueeze(1).to(torch.float32).div_(255.0).to(dtype)
    return x, ds.labels.to(torch.int64)


def mode_steps(cfg, a, r):
    dtype = ref.DTYPES[cfg["train"]["dtype"]]
    train_ds, test_ds, _ = ref.make_datasets(cfg)
    model, optimizer = build(cfg, a.channels_last)
    criterion = nn.CrossEntropyLoss()
    bs = int(cfg["train"]["batch_size"])
    x_all, y_all = as_tensors(train_ds, dtype)
    n = len(y_all)

    def batch(i, b):
        idx = torch.arange(i * b, i * b + b) % n
        x = x_all.index_select(0, idx)
        if a.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y_all.index_select(0, idx)

    def step(x, y):
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        return loss.item()

    def train_time(b, warmup, steps):
        model.train()
        for i in range(warmup):
            step(*batch(i, b))
        total = 0.0
        for i in range(steps):
            x, y = batch(warmup + i, b)
            t0 = time.perf_counter()
            step(x, y)
            total += time.perf_counter() - t0
        return total

    t = train_time(bs, a.warmup, a.steps)
    r["batch_size"] = bs
    r["train_step_s"] = t / a.steps
    r["train_images_per_s"] = bs * a.steps / t

    # The same steps fed by the reference's DataLoader (shuffle, per-sample PIL + ToTensor): its real loop.
    loader = DataLoader(train_ds, batch_size=bs, shuffle=True)
    it = iter(loader)
    model.train()
    total, done = 0.0, 0
    t_prev = time.perf_counter()
    for i in range(a.warmup + a.steps):
        images, labels = next(it)
        images = images.to(dtype)
        step(images, labels)
        t_now = time.perf_counter()
        if i >= a.warmup:
            total += t_now - t_prev
            done += 1
        t_prev = t_now
    r["train_images_per_s_dataloader"] = bs * done / total

    # Evaluation: no grad, eval mode.
    xt, yt = as_tensors(test_ds, dtype)
    r["eval_images"] = len(yt)

    eval_reps = 2   # timed passes of every evaluation figure

    def eval_rate(b, reps=eval_reps):
        model.eval()
        with torch.no_grad():
            def once():
                for s in range(0, len(yt), b):
                    x = xt[s:s + b]
                    if a.channels_last:
                        x = x.contiguous(memory_format=torch.channels_last)
                    out = model(x)
                    nn.functional.cross_entropy(out, yt[s:s + b], reduction="sum").item()
                    (out.argmax(1) == yt[s:s + b]).sum().item()
            once()
            t0 = time.perf_counter()
            for _ in range(reps):
                once()
            return reps * len(yt) / (time.perf_counter() - t0)

    r["eval_images_per_s"] = eval_rate(bs)
    r["eval_images_per_s_1000"] = eval_rate(1000)
    # The reference's own evaluate(): DataLoader(test, batch_size) + ToTensor per image.
    test_loader = DataLoader(test_ds, batch_size=bs, shuffle=False)
    ref.evaluate(model, test_loader, criterion, dtype)
    t0 = time.perf_counter()
    for _ in range(eval_reps):
        ref.evaluate(model, test_loader, criterion, dtype)
    r["eval_images_per_s_reference_loop"] = eval_reps * len(test_ds) / (time.perf_counter() - t0)

    sweep = {}
    for b in [int(v) for v in a.batch_sizes.split(",") if v]:
        sweep[str(b)] = train_time(b, a.warmup, a.steps) / a.steps
    r["step_s_by_batch"] = sweep

    # Where a step's time goes, with the data coming from the reference's DataLoader.
    model.train()
    it = iter(DataLoader(train_ds, batch_size=bs, shuffle=True))
    acc = {"data": 0.0, "forward": 0.0, "backward": 0.0, "optimizer": 0.0}
    for i in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        images, labels = next(it)
        images = images.to(dtype)
        if a.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        t1 = time.perf_counter()
        optimizer.zero_grad()
        loss = criterion(model(images), labels)
        t2 = time.perf_counter()
        loss.backward()
        t3 = time.perf_counter()
        optimizer.step()
        loss.item()
        t4 = time.perf_counter()
        if i >= a.warmup:
            for k, v in zip(acc, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                acc[k] += v
    r["breakdown_s"] = {k: v / a.steps for k, v in acc.items()}


def mode_epoch(cfg, a, r):
    t_start = time.perf_counter()
    dtype = ref.DTYPES[cfg["train"]["dtype"]]
    train_ds, _, _ = ref.make_datasets(cfg)
    model, optimizer = build(cfg, a.channels_last)
    setup = time.perf_counter() - t_start
    bs = int(cfg["train"]["batch_size"])
    phases = {"data": 0.0, "forward": 0.0, "backward": 0.0, "optimizer": 0.0}
    steps = [0]

    class TimedLoader:
        """The DataLoader, with the time spent fetching each batch (PIL + ToTensor + collate) added to "data"."""
        def __init__(self, loader):
            self.loader = loader

        def __iter__(self):
            it = iter(self.loader)
            while True:
                t = time.perf_counter()
                try:
                    batch = next(it)
                except StopIteration:
                    return
                phases["data"] += time.perf_counter() - t
                steps[0] += 1
                yield batch

    # The reference's own train_epoch runs unchanged; forward is timed by module hooks, the step by wrapping it, and
    # "backward" is the rest of the epoch (zero_grad, loss, backward, loss.item()).
    mark = [0.0]
    model.register_forward_pre_hook(lambda m, i: mark.__setitem__(0, time.perf_counter()))
    model.register_forward_hook(lambda m, i, o: phases.__setitem__("forward", phases["forward"] + time.perf_counter() - mark[0]))
    own_step = optimizer.step

    def timed_step(*args, **kwargs):
        t = time.perf_counter()
        out = own_step(*args, **kwargs)
        phases["optimizer"] += time.perf_counter() - t
        return out
    optimizer.step = timed_step
    t0 = time.perf_counter()
    loader = DataLoader(train_ds, batch_size=bs, shuffle=bool(cfg["train"]["shuffle"]))
    ref.train_epoch(model, TimedLoader(loader), nn.CrossEntropyLoss(), optimizer, dtype)
    end = time.perf_counter()
    phases["backward"] = (end - t0) - phases["data"] - phases["forward"] - phases["optimizer"]
    r["breakdown_s"] = {k: v / max(1, steps[0]) for k, v in phases.items()}
    r["train_images"] = len(train_ds)
    r["batch_size"] = bs
    r["setup_s"] = setup
    r["epoch_train_s"] = end - t0
    r["epoch_total_s"] = end - t_start


def mode_data(cfg, a, r):
    t0 = time.perf_counter()
    train_ds, _, _ = ref.make_datasets(cfg)
    t1 = time.perf_counter()
    images = 0
    for x, y in DataLoader(train_ds, batch_size=int(cfg["train"]["batch_size"]), shuffle=True):
        images += len(y)
    t2 = time.perf_counter()
    r["train_images"] = images
    r["load_s"] = t1 - t0
    r["batches_s"] = t2 - t1
    r["total_s"] = t2 - t0


def mode_optimizer(cfg, a, r):
    dtype = ref.DTYPES[cfg["train"]["dtype"]]
    train_ds, _, _ = ref.make_datasets(cfg)
    model, optimizer = build(cfg, a.channels_last)
    x_all, y_all = as_tensors(train_ds, dtype)
    idx = torch.arange(0, int(cfg["train"]["batch_size"])) % len(y_all)
    model.train()
    optimizer.zero_grad()
    nn.CrossEntropyLoss()(model(x_all.index_select(0, idx)), y_all.index_select(0, idx)).backward()
    for _ in range(a.warmup):
        optimizer.step()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        optimizer.step()
        times.append(time.perf_counter() - t0)
    r["parameters"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    r["optimizer_step_s"] = sum(times) / len(times)
    r["optimizer_step_min_s"] = min(times)
    r["optimizer_step_max_s"] = max(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("--mode", default="steps", choices=["steps", "epoch", "data", "optimizer"])
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch-sizes", default="16,64,256")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--json")
    a = ap.parse_args()
    cfg = ref.load_config(a.config, a.set)
    ref.set_threads(cfg.get("threads"))
    r = {"implementation": "reference", "mode": a.mode, "threads_config": cfg.get("threads"),
         "channels_last": a.channels_last}
    {"steps": mode_steps, "epoch": mode_epoch, "data": mode_data, "optimizer": mode_optimizer}[a.mode](cfg, a, r)
    r["threads"] = torch.get_num_threads()
    r["torch"] = torch.__version__
    r["torchvision"] = __import__("torchvision").__version__
    r["python"] = sys.version.split()[0]
    r["vm_hwm_mib"] = proc_status_mib("VmHWM")
    r["vm_rss_mib"] = proc_status_mib("VmRSS")
    text = json.dumps(r, indent=2)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
