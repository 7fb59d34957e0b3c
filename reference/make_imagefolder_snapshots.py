"""What torchvision (0.14) makes of the image-folder fixture, for the C# tests.

    /usr/bin/python3 reference/make_imagefolder_snapshots.py [FIXTURE] [OUT]
        FIXTURE default: parity-tests/data/imagefolder-fixture      OUT default: reference/snapshots/imagefolder

OUT/batches.json   the index (classes, files relative to FIXTURE, targets) of ImageFolder(FIXTURE/train) and
                   ImageFolder(FIXTURE/val); then torch.manual_seed(SEED) and, for EPOCHS epochs, a
                   DataLoader(batch_size=BATCH, shuffle=True) over the training split with the reference program's
                   transform (data.augment and data.normalize true, data.image_size IMAGE_SIZE: RandomResizedCrop,
                   RandomHorizontalFlip, ToTensor, Normalize) followed by one pass of DataLoader(val, BATCH) with the
                   evaluation transform (Resize(int(IMAGE_SIZE / 0.875)), CenterCrop, ToTensor, Normalize);
                   per batch: labels and the sha256 of the float32 N x 3 x S x S tensor's bytes.
"""
import hashlib
import json
import os
import sys

import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) if "__file__" in globals() else "reference")
from resnet_mnist import imagefolder_transform  # noqa: E402  (the reference program's own transforms)

SEED, EPOCHS, BATCH, IMAGE_SIZE = 7, 2, 5, 24


def sha(x):
    assert x.dtype == torch.float32
    return hashlib.sha256(x.contiguous().numpy().tobytes()).hexdigest()


def main():
    here = os.path.dirname(os.path.abspath(__file__)) if "__file__" in globals() else "reference"
    fixture = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "parity-tests", "data", "imagefolder-fixture")
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "snapshots", "imagefolder")
    d = {"image_size": IMAGE_SIZE, "resize_size": None, "augment": True, "normalize": True}
    train = torchvision.datasets.ImageFolder(os.path.join(fixture, "train"), imagefolder_transform(d, True))
    val = torchvision.datasets.ImageFolder(os.path.join(fixture, "val"), imagefolder_transform(d, False))
    index = {name: {"classes": ds.classes, "files": [os.path.relpath(p, fixture) for p, _ in ds.samples], "targets": ds.targets}
             for name, ds in (("train", train), ("val", val))}
    torch.manual_seed(SEED)
    train_loader = torch.utils.data.DataLoader(train, batch_size=BATCH, shuffle=True)
    val_loader = torch.utils.data.DataLoader(val, batch_size=BATCH, shuffle=False)
    epochs, evals = [], []
    for _ in range(EPOCHS):
        epochs.append([{"labels": [int(v) for v in y], "sha256": sha(x)} for x, y in train_loader])
        evals.append([{"labels": [int(v) for v in y], "sha256": sha(x)} for x, y in val_loader])
    assert evals[0] == evals[-1]
    snap = {"seed": SEED, "batch_size": BATCH, "image_size": IMAGE_SIZE, "index": index, "epochs": epochs, "val": evals[0]}
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "batches.json"), "w") as f:
        json.dump(snap, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
