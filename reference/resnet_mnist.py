#!/usr/bin/env python3
"""The original PyTorch program: ResNet-18 on MNIST, driven by the project's YAML config.

    /usr/bin/python3 reference/resnet_mnist.py CONFIG.yaml [--set key.path=value ...] --out DIR [--threads N]

What it does (the user's original script, unchanged in substance):
  * torchvision resnet18 (optionally with pretrained weights), conv1 replaced by
    nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False), fc by nn.Linear(512, 10);
  * a Dataset wrapper over MNIST applying transforms.ToTensor() (byte / 255, float32);
  * DataLoader(train, batch_size, shuffle=True), nn.CrossEntropyLoss(), SGD or Adam at lr 1e-3;
  * per epoch: mean of the batch losses, then test accuracy in %.

Order of random-number use (this is what a reimplementation must follow to match bit for bit):
  torch.manual_seed(seed)
  -> resnet18() with 3 channels / 1000 classes (its constructor and init loop draw from the generator)
  -> [pretrained weights loaded, if any]
  -> conv1 replaced (if in_channels != 3) -> fc replaced (if num_classes != 1000)
  -> model.to(dtype) -> optimizer
  -> for each epoch: iterate DataLoader(train, batch_size, shuffle) (num_workers 0, drop_last False),
     then DataLoader(test, batch_size, shuffle=False) under torch.no_grad() in eval mode.
  Every iter(DataLoader) draws one int64 from the global generator (_base_seed), and a shuffling
  sampler draws one more at the first batch to seed its own torch.Generator for randperm.

Config keys honoured (defaults in brackets); other keys are ignored:
  seed [0], threads [auto], data.dataset [mnist | fashion-mnist | cifar10 | cifar100], data.root [data],
  data.train_limit [null], data.test_limit [null], data.normalize [false], data.val_split [0],
  model.pretrained [none | path to a torchvision-layout .pth state_dict | imagenet],
  model.in_channels [the dataset's channels], model.num_classes [the dataset's classes: 100 for cifar100, else 10],
  train.epochs [10], train.batch_size [64], train.shuffle [true], train.dtype [float32 | float64],
  train.early_stop_patience [null],
  optimizer.name [sgd | adam | adamw], optimizer.lr [1e-3], optimizer.momentum [0],
  optimizer.nesterov [false], optimizer.weight_decay [0], optimizer.betas [[0.9, 0.999]],
  optimizer.eps [1e-8],
  scheduler.name [none | step | cosine | onecycle], scheduler.step_size [3], scheduler.gamma [0.1],
  scheduler.t_max [null = train.epochs], scheduler.eta_min [0], scheduler.max_lr [null = 10 x optimizer.lr],
  scheduler.pct_start [0.3].
Schedulers are PyTorch's own: StepLR and CosineAnnealingLR stepped once per epoch, OneCycleLR (its defaults:
cosine annealing, div_factor 25, final_div_factor 1e4, momentum / Adam's beta1 cycled between 0.85 and 0.95)
stepped once per batch.
Relative paths in the config resolve against the config file's folder.

With data.val_split = f > 0 the training set (after train_limit) is split by
torch.utils.data.random_split(train, [n - floor(n*f), floor(n*f)], generator=torch.Generator().manual_seed(seed))
(its own generator: the global one draws as without a split); the DataLoader shuffles the training Subset, and each
epoch evaluates DataLoader(validation, shuffle=False) before the test loader (one more _base_seed draw per epoch);
the validation images get the evaluation transform (no augmentation), as the test images do.
train.early_stop_patience stops after that many epochs without a higher validation accuracy.

Outputs in --out DIR: steps.csv (step,epoch,loss,lr), metrics.csv
(epoch,train_loss,test_loss,test_accuracy) and last.pt (the final state_dict).

    /usr/bin/python3 reference/resnet_mnist.py CONFIG.yaml --parity-dump DIR --steps N [--threads T]

trains only the first N steps, in the program's own order (the same seed, model, optimizer, scheduler and
DataLoader; the test-set evaluation at each epoch end that falls within the N steps included), and writes
DIR/parity.pt, a torch.save dict of tensors: init.<key> (state_dict before training), layer.<name> (each
top-level module's output in the first step's forward, captured by forward hooks), grad.<name> (parameter
gradients after the first backward) and final.<key> (state_dict after N steps), plus DIR/parity.json with
the per-step losses and learning rates.
"""
import argparse
import copy
import gzip
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
import torchvision
import yaml
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

DEFAULTS = {
    "seed": 0,
    "threads": "auto",
    "data": {"dataset": "mnist", "root": "data", "train_limit": None, "test_limit": None,
             "normalize": False, "augment": False, "val_split": 0, "image_size": 224, "resize_size": None},
    "model": {"arch": "resnet18", "pretrained": "none", "in_channels": 1, "num_classes": 10},
    "train": {"epochs": 10, "batch_size": 64, "shuffle": True, "dtype": "float32", "early_stop_patience": None},
    "optimizer": {"name": "sgd", "lr": 1e-3, "momentum": 0.0, "nesterov": False,
                  "weight_decay": 0.0, "betas": [0.9, 0.999], "eps": 1e-8},
    "scheduler": {"name": "none", "step_size": 3, "gamma": 0.1, "t_max": None, "eta_min": 0.0,
                  "max_lr": None, "pct_start": 0.3},
}
SCHEDULERS = ("none", "step", "cosine", "onecycle")
LAYER_NAMES = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", "fc")

DATASET_FOLDERS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python",
                   "imagefolder": "train"}
DTYPES = {"float32": torch.float32, "float64": torch.float64}
# Normalize((mean,), (std,)) per dataset, with data.normalize: true
NORMALIZE = {
    "mnist": ((0.1307,), (0.3081,)),
    "fashion-mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "imagefolder": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),  # ImageNet's
}
NUM_CLASSES = {"cifar100": 100}  # the others have 10


# ----------------------------------------------------------------------------- config

def _merge(base, override):
    out = copy.deepcopy(base)
    for k, v in (override or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def apply_set(cfg, assignment):
    """Apply one `key.path=value` override; the value is parsed as YAML (so 0.01, true, null, [1, 2])."""
    if "=" not in assignment:
        raise SystemExit(f"--set expects key.path=value, got {assignment!r}")
    path, raw = assignment.split("=", 1)
    keys = path.strip().split(".")
    node = cfg
    for k in keys[:-1]:
        if not isinstance(node.get(k), dict):
            node[k] = {}
        node = node[k]
    node[keys[-1]] = yaml.safe_load(raw)


def load_config(path, sets=()):
    with open(path) as f:
        user = yaml.safe_load(f) or {}
    for s in sets:
        apply_set(user, s)
    cfg = _merge(DEFAULTS, user)
    if "in_channels" not in (user.get("model") or {}):
        cfg["model"]["in_channels"] = 3 if cfg["data"]["dataset"] in (*CIFAR, "imagefolder") else 1  # the dataset's channels
    if (user.get("model") or {}).get("num_classes") is None:
        cfg["model"]["num_classes"] = NUM_CLASSES.get(cfg["data"]["dataset"], 10)  # the dataset's classes
    base = os.path.dirname(os.path.abspath(path))
    cfg["data"]["root"] = _resolve(base, cfg["data"]["root"])
    if cfg["data"]["dataset"] == "imagefolder" and (user.get("model") or {}).get("num_classes") is None:
        # the classes of ROOT/train, as ImageFolder finds them
        cfg["model"]["num_classes"] = len(torchvision.datasets.folder.find_classes(os.path.join(cfg["data"]["root"], "train"))[0])
    pre = cfg["model"]["pretrained"]
    if _is_path_like(pre):
        cfg["model"]["pretrained"] = _resolve(base, pre)
    if str(cfg["scheduler"]["name"]) not in SCHEDULERS:
        raise SystemExit(f"scheduler.name must be one of {list(SCHEDULERS)}")
    if cfg["train"]["dtype"] not in DTYPES:
        raise SystemExit(f"train.dtype must be one of {sorted(DTYPES)}")
    if cfg["data"]["dataset"] not in DATASET_FOLDERS:
        raise SystemExit(f"data.dataset must be one of {sorted(DATASET_FOLDERS)}")
    return cfg


def _resolve(base, p):
    p = os.path.expanduser(str(p))
    return p if os.path.isabs(p) else os.path.normpath(os.path.join(base, p))


def _is_path_like(v):
    return isinstance(v, str) and v.lower() not in ("none", "imagenet", "")


# ----------------------------------------------------------------------------- data

def _read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    magic = struct.unpack(">i", raw[:4])[0]
    if magic == 2051:
        n, rows, cols = struct.unpack(">iii", raw[4:16])
        data = np.frombuffer(raw, dtype=np.uint8, count=n * rows * cols, offset=16)
        return torch.from_numpy(data.copy()).reshape(n, rows, cols)
    if magic == 2049:
        n = struct.unpack(">i", raw[4:8])[0]
        data = np.frombuffer(raw, dtype=np.uint8, count=n, offset=8)
        return torch.from_numpy(data.copy())
    raise ValueError(f"{path}: not an IDX image/label file (magic {magic})")


def _find(raw_dir, name):
    for candidate in (name + ".gz", name):  # .gz preferred when both exist
        p = os.path.join(raw_dir, candidate)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(f"{os.path.join(raw_dir, name)}[.gz] not found")


def load_idx(root, dataset="mnist", train=True):
    """Read ROOT/MNIST/raw (or ROOT/FashionMNIST/raw) IDX files into uint8 tensors (images N×28×28, labels N)."""
    raw_dir = os.path.join(root, DATASET_FOLDERS[dataset], "raw")
    prefix = "train" if train else "t10k"
    images = _read_idx(_find(raw_dir, f"{prefix}-images-idx3-ubyte"))
    labels = _read_idx(_find(raw_dir, f"{prefix}-labels-idx1-ubyte"))
    assert len(images) == len(labels), (len(images), len(labels))
    return images, labels


class MnistDataset(Dataset):
    """The original Dataset wrapper: a PIL image through the transform (ToTensor = byte / 255, float32)."""

    def __init__(self, images, labels, transform=None, limit=None):
        if limit is not None:
            images, labels = images[:limit], labels[:limit]
        self.images = images
        self.labels = labels
        self.transform = transform or transforms.ToTensor()

    def __len__(self):
        return len(self.images)

    def __getitem__(self, idx):
        img = Image.fromarray(self.images[idx].numpy(), mode="L")
        return self.transform(img), int(self.labels[idx])


def make_transform(dataset="mnist", normalize=False, augment=False):
    """ToTensor (byte / 255, float32), optionally Normalize; with augment (CIFAR-10's usual recipe) first
    RandomCrop(32, padding=4) and RandomHorizontalFlip() on the PIL image, drawing from the global generator."""
    steps = []
    if augment:
        steps += [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip()]
    steps.append(transforms.ToTensor())
    if normalize:
        steps.append(transforms.Normalize(*NORMALIZE[dataset]))
    return transforms.Compose(steps)


class LocalCIFAR10(torchvision.datasets.CIFAR10):
    """torchvision's CIFAR10 reading the files as they are: the tool checks md5s in `data verify`, so a local copy
    (or a small fixture in the same format) is used without torchvision's integrity check. LocalCIFAR100 below is
    the same for torchvision's CIFAR100 (a subclass of CIFAR10 that only changes the file names and keys)."""

    def _check_integrity(self):
        return os.path.isdir(os.path.join(self.root, self.base_folder))

    def _load_meta(self):
        import pickle
        with open(os.path.join(self.root, self.base_folder, self.meta["filename"]), "rb") as f:
            data = pickle.load(f, encoding="latin1")
        self.classes = data[self.meta["key"]]
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}


class LocalCIFAR100(torchvision.datasets.CIFAR100):
    _check_integrity = LocalCIFAR10._check_integrity
    _load_meta = LocalCIFAR10._load_meta


CIFAR = {"cifar10": LocalCIFAR10, "cifar100": LocalCIFAR100}


def _first(ds, limit):
    return ds if limit is None else torch.utils.data.Subset(ds, range(min(limit, len(ds))))


def imagefolder_transform(d, train):
    """torchvision's classification presets: training with augment RandomResizedCrop(image_size) +
    RandomHorizontalFlip(), otherwise Resize(resize_size) + CenterCrop(image_size); then ToTensor (+ Normalize)."""
    size = d["image_size"]
    resize = d["resize_size"] or int(size / 0.875)
    steps = ([transforms.RandomResizedCrop(size), transforms.RandomHorizontalFlip()] if train and d["augment"]
             else [transforms.Resize(resize), transforms.CenterCrop(size)])
    steps.append(transforms.ToTensor())
    if d["normalize"]:
        steps.append(transforms.Normalize(*NORMALIZE["imagefolder"]))
    return transforms.Compose(steps)


def split_sizes(n, fraction):
    """[n - n_val, n_val] with n_val = floor(n * fraction): the lengths random_split itself computes from the fractions
    [1 - fraction, fraction] (each share floored, the remainder, at most 1, added to the first part)."""
    n_val = int(math.floor(n * fraction))
    return [n - n_val, n_val]


def validation_split(train, fraction, seed):
    """(training Subset, validation Subset) of `train`, as torch.utils.data.random_split draws them."""
    return torch.utils.data.random_split(train, split_sizes(len(train), fraction),
                                         generator=torch.Generator().manual_seed(int(seed)))


def make_datasets(cfg):
    """(train, test, train_eval): train_eval holds the training images with the evaluation transform (no
    augmentation), for the validation part of a data.val_split."""
    d = cfg["data"]
    if d["dataset"] == "imagefolder":
        folder = os.path.join(d["root"], "train")
        train = torchvision.datasets.ImageFolder(folder, imagefolder_transform(d, True))
        train_eval = torchvision.datasets.ImageFolder(folder, imagefolder_transform(d, False))
        test = torchvision.datasets.ImageFolder(os.path.join(d["root"], "val"), imagefolder_transform(d, False))
        return _first(train, d["train_limit"]), _first(test, d["test_limit"]), _first(train_eval, d["train_limit"])
    if d["dataset"] in CIFAR:
        cifar = CIFAR[d["dataset"]]
        train = cifar(d["root"], train=True, transform=make_transform(d["dataset"], d["normalize"], d["augment"]))
        train_eval = cifar(d["root"], train=True, transform=make_transform(d["dataset"], d["normalize"]))
        test = cifar(d["root"], train=False, transform=make_transform(d["dataset"], d["normalize"]))
        return _first(train, d["train_limit"]), _first(test, d["test_limit"]), _first(train_eval, d["train_limit"])
    if d["augment"]:
        raise SystemExit(f"data.augment applies to {', '.join((*CIFAR, 'imagefolder'))} only")
    tf = make_transform(d["dataset"], d["normalize"])
    train = MnistDataset(*load_idx(d["root"], d["dataset"], True), tf, d["train_limit"])
    test = MnistDataset(*load_idx(d["root"], d["dataset"], False), tf, d["test_limit"])
    return train, test, train


# ----------------------------------------------------------------------------- model

def load_archs():
    """archs.json beside this file: the architectures (and their weights) the tool and this program share."""
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "archs.json"), encoding="utf-8") as f:
        return {a["name"]: a for a in json.load(f)["archs"]}


ARCHS = load_archs()


def build_model(pretrained="none", in_channels=1, num_classes=10, arch="resnet18"):
    """torchvision <arch> (3 channels, 1000 classes), optional weights, then conv1 and fc replaced.

    arch: a name in archs.json (torchvision.models.<arch>()).
    pretrained: none | imagenet, torchvision (torchvision's IMAGENET1K_V1 via the torch.hub cache) |
    a weights enum member of the arch (IMAGENET1K_V2, ...) |
    path to a .pth state_dict in torchvision layout (loaded before the replacements;
    fc.* may be missing or of another shape, every other key must match).
    """
    if arch not in ARCHS:
        raise SystemExit(f"model.arch={arch!r}: expected one of {sorted(ARCHS)}")
    ctor = getattr(torchvision.models, arch)
    if pretrained in (None, False, "none", "None", ""):
        model = ctor()
    elif pretrained in (True, "imagenet", "torchvision"):
        model = ctor(weights=torchvision.models.get_model_weights(arch).IMAGENET1K_V1)
    elif pretrained in torchvision.models.get_model_weights(arch).__members__:
        model = ctor(weights=torchvision.models.get_model_weights(arch)[pretrained])
    else:
        model = ctor()
        state = torch.load(pretrained, map_location="cpu")
        own = model.state_dict()
        state = {k: v for k, v in state.items()
                 if not (k.startswith("fc.") and (k not in own or own[k].shape != v.shape))}
        missing, unexpected = model.load_state_dict(state, strict=False)
        bad = [k for k in list(missing) + list(unexpected) if not k.startswith("fc.")]
        if bad:
            raise SystemExit(f"{pretrained}: not a torchvision {arch} state_dict (keys {bad[:5]} ...)")
    if in_channels != 3:
        model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    if num_classes != 1000:
        model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


def make_optimizer(params, name="sgd", lr=1e-3, momentum=0.0, nesterov=False, weight_decay=0.0,
                   betas=(0.9, 0.999), eps=1e-8):
    name = name.lower()
    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    if name == "adam":
        return optim.Adam(params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)
    if name == "adamw":
        return optim.AdamW(params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)
    raise SystemExit(f"optimizer.name={name!r}: expected sgd, adam or adamw")


def make_scheduler(optimizer, cfg, steps_per_epoch):
    """The configured PyTorch scheduler and when it steps: ("epoch", StepLR/CosineAnnealingLR),
    ("batch", OneCycleLR) or (None, None)."""
    s, lr, epochs = cfg["scheduler"], float(cfg["optimizer"]["lr"]), int(cfg["train"]["epochs"])
    name = str(s["name"])
    if name == "step":
        return "epoch", optim.lr_scheduler.StepLR(optimizer, step_size=int(s["step_size"]), gamma=float(s["gamma"]))
    if name == "cosine":
        t_max = int(s["t_max"]) if s["t_max"] is not None else epochs
        return "epoch", optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=t_max, eta_min=float(s["eta_min"]))
    if name == "onecycle":
        max_lr = float(s["max_lr"]) if s["max_lr"] is not None else 10 * lr
        return "batch", optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, epochs=epochs,
                                                      steps_per_epoch=steps_per_epoch,
                                                      pct_start=float(s["pct_start"]))
    return None, None


def build_training(cfg):
    """Data, then seed -> model -> dtype -> optimizer -> scheduler, in the program's order."""
    m, t, o = cfg["model"], cfg["train"], cfg["optimizer"]
    dtype = DTYPES[t["dtype"]]
    train_ds, test_ds, train_eval_ds = make_datasets(cfg)
    val_ds = None
    if float(cfg["data"]["val_split"]) > 0:
        train_ds, val_ds = validation_split(train_ds, float(cfg["data"]["val_split"]), cfg["seed"])
        # The validation images are evaluated as the test images are, without augmentation (a Subset of the
        # augmented training set would draw random crops while validating).
        val_ds = torch.utils.data.Subset(train_eval_ds, val_ds.indices)
    torch.manual_seed(int(cfg["seed"]))
    model = build_model(m["pretrained"], int(m["in_channels"]), int(m["num_classes"]), str(m.get("arch", "resnet18")))
    model = model.to(dtype)
    optimizer = make_optimizer(model.parameters(), o["name"], float(o["lr"]), float(o["momentum"]),
                               bool(o["nesterov"]), float(o["weight_decay"]),
                               [float(b) for b in o["betas"]], float(o["eps"]))
    batch_size = int(t["batch_size"])
    steps_per_epoch = (len(train_ds) + batch_size - 1) // batch_size
    when, scheduler = make_scheduler(optimizer, cfg, steps_per_epoch)
    return dtype, train_ds, test_ds, val_ds, model, optimizer, when, scheduler


# ----------------------------------------------------------------------------- loops

def train_epoch(model, loader, criterion, optimizer, dtype=torch.float32, on_step=None, batch_scheduler=None,
                after_backward=None, max_steps=None):
    """One pass over loader in train mode (or its first max_steps batches); returns the mean of the batch losses.

    on_step(loss, lr) gets the learning rate the step used; a per-batch scheduler steps after it.
    """
    model.train()
    running_loss = 0.0
    batches = 0
    for images, labels in loader:
        images = images.to(dtype)
        optimizer.zero_grad()
        outputs = model(images)
        loss = criterion(outputs, labels)
        loss.backward()
        if after_backward is not None:
            after_backward()
        optimizer.step()
        value = loss.item()
        running_loss += value
        batches += 1
        if on_step is not None:
            on_step(value, optimizer.param_groups[0]["lr"])
        if batch_scheduler is not None:
            batch_scheduler.step()
        if max_steps is not None and batches >= max_steps:
            break
    return running_loss / batches


def evaluate(model, loader, criterion, dtype=torch.float32):
    """Eval mode, no grad; returns (sum of per-sample losses / N, accuracy in %). Leaves the model in train mode."""
    model.eval()
    correct = 0
    total = 0
    loss_sum = 0.0
    with torch.no_grad():
        for images, labels in loader:
            images = images.to(dtype)
            outputs = model(images)
            loss_sum += criterion(outputs, labels).item() * labels.size(0)
            _, predicted = torch.max(outputs, 1)
            total += labels.size(0)
            correct += (predicted == labels).sum().item()
    model.train()
    return loss_sum / total, 100.0 * correct / total


# ----------------------------------------------------------------------------- main

def set_threads(threads):
    if threads not in (None, "auto"):
        torch.set_num_threads(int(threads))


def run(cfg, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    t, o = cfg["train"], cfg["optimizer"]
    dtype, train_ds, test_ds, val_ds, model, optimizer, when, scheduler = build_training(cfg)
    criterion = nn.CrossEntropyLoss()
    batch_size = int(t["batch_size"])
    epochs = int(t["epochs"])
    patience = t.get("early_stop_patience")
    best_val, best_epoch = -1.0, 0

    print(f"train {len(train_ds)}{f' / validation {len(val_ds)}' if val_ds is not None else ''} / test {len(test_ds)} images, {epochs} epochs, batch {batch_size}, "
          f"{o['name']} lr {o['lr']}, {t['dtype']}, threads {torch.get_num_threads()}")
    step = 0
    accuracy = float("nan")
    with open(os.path.join(out_dir, "steps.csv"), "w") as steps_f, \
            open(os.path.join(out_dir, "metrics.csv"), "w") as metrics_f:
        steps_f.write("step,epoch,loss,lr\n")
        metrics_f.write("epoch,train_loss,test_loss,test_accuracy" + (",val_loss,val_accuracy" if val_ds is not None else "") + "\n")
        for epoch in range(1, epochs + 1):
            def on_step(loss, lr):
                nonlocal step
                step += 1
                steps_f.write(f"{step},{epoch},{loss!r},{lr!r}\n")

            start = time.time()
            train_loader = DataLoader(train_ds, batch_size=batch_size, shuffle=bool(t["shuffle"]))
            train_loss = train_epoch(model, train_loader, criterion, optimizer, dtype, on_step,
                                     scheduler if when == "batch" else None)
            if when == "epoch":
                scheduler.step()
            val = ""
            if val_ds is not None:
                val_loss, val_accuracy = evaluate(model, DataLoader(val_ds, batch_size=batch_size, shuffle=False), criterion, dtype)
                val = f",{val_loss!r},{val_accuracy!r}"
                if val_accuracy > best_val:
                    best_val, best_epoch = val_accuracy, epoch
            test_loader = DataLoader(test_ds, batch_size=batch_size, shuffle=False)
            test_loss, accuracy = evaluate(model, test_loader, criterion, dtype)
            metrics_f.write(f"{epoch},{train_loss!r},{test_loss!r},{accuracy!r}{val}\n")
            steps_f.flush()
            metrics_f.flush()
            print(f"Epoch {epoch}/{epochs}, loss: {train_loss}, test loss: {test_loss}, "
                  f"test accuracy: {accuracy:.2f}% ({time.time() - start:.1f} s)")
            if patience is not None and val_ds is not None and epoch < epochs and epoch - best_epoch >= int(patience):
                print(f"early stop after epoch {epoch}: no higher validation accuracy than {best_val:.2f}% (epoch {best_epoch}) "
                      f"for {epoch - best_epoch} epochs")
                break
    torch.save(model.state_dict(), os.path.join(out_dir, "last.pt"))
    print(f"Test accuracy: {accuracy:.2f}%")
    return accuracy


def parity_dump(cfg, out_dir, steps):
    """Trains the first `steps` steps exactly as run() does and saves what a reimplementation must reproduce."""
    import json
    os.makedirs(out_dir, exist_ok=True)
    t = cfg["train"]
    dtype, train_ds, test_ds, val_ds, model, optimizer, when, scheduler = build_training(cfg)
    criterion = nn.CrossEntropyLoss()
    batch_size = int(t["batch_size"])
    out = {"init." + k: v.detach().clone() for k, v in model.state_dict().items()}

    # Each top-level module's output in the first step's forward (cloned: relu is in place, and later steps
    # must not overwrite it); the hooks are removed after that forward, so nothing else changes.
    handles = []

    def capture(name):
        def hook(module, inputs, output):
            out["layer." + name] = output.detach().clone()
        return hook

    for name in LAYER_NAMES:
        handles.append(getattr(model, name).register_forward_hook(capture(name)))

    def after_first_backward():
        nonlocal handles
        if handles:
            for h in handles:
                h.remove()
            handles = []
            for k, p in model.named_parameters():
                if p.grad is not None:
                    out["grad." + k] = p.grad.detach().clone()

    losses, lrs = [], []

    def on_step(loss, lr):
        losses.append(loss)
        lrs.append(lr)

    epoch = 0
    while len(losses) < steps and epoch < int(t["epochs"]):
        epoch += 1
        train_loader = DataLoader(train_ds, batch_size=batch_size, shuffle=bool(t["shuffle"]))
        train_epoch(model, train_loader, criterion, optimizer, dtype, on_step,
                    scheduler if when == "batch" else None, after_first_backward, steps - len(losses))
        if len(losses) < steps:  # the epoch ended inside the N steps: the program's epoch end follows
            if when == "epoch":
                scheduler.step()
            if val_ds is not None:
                evaluate(model, DataLoader(val_ds, batch_size=batch_size, shuffle=False), criterion, dtype)
            evaluate(model, DataLoader(test_ds, batch_size=batch_size, shuffle=False), criterion, dtype)
    out.update({"final." + k: v.detach().clone() for k, v in model.state_dict().items()})
    torch.save(out, os.path.join(out_dir, "parity.pt"))
    with open(os.path.join(out_dir, "parity.json"), "w") as f:
        json.dump({"losses": losses, "lrs": lrs, "threads": torch.get_num_threads(), "torch": torch.__version__,
                   "torchvision": torchvision.__version__}, f)
    print(f"{len(losses)} steps, threads {torch.get_num_threads()}, last loss {losses[-1]!r}")


def main(argv=None):
    ap = argparse.ArgumentParser(description="ResNet-18 on MNIST, the original PyTorch program.")
    ap.add_argument("config", help="YAML config (the project's schema)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE",
                    help="override a config value (repeatable)")
    ap.add_argument("--out", help="output folder for steps.csv, metrics.csv, last.pt")
    ap.add_argument("--threads", help="torch.set_num_threads (overrides the config's threads)")
    ap.add_argument("--parity-dump", metavar="DIR", help="train only --steps steps and write DIR/parity.pt + parity.json")
    ap.add_argument("--steps", type=int, default=20, help="steps for --parity-dump (default 20)")
    args = ap.parse_args(argv)
    if (args.out is None) == (args.parity_dump is None):
        ap.error("give exactly one of --out DIR and --parity-dump DIR")
    cfg = load_config(args.config, args.set)
    set_threads(args.threads if args.threads is not None else cfg.get("threads"))
    if args.parity_dump is not None:
        parity_dump(cfg, args.parity_dump, args.steps)
    else:
        run(cfg, args.out)


if __name__ == "__main__":
    main()
