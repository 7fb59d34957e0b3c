"""What torchvision (0.14) makes of a CIFAR fixture (CIFAR-10's or CIFAR-100's), for the C# tests.

    /usr/bin/python3 reference/make_cifar_snapshots.py [FIXTURE] [OUT]
        FIXTURE default: parity-tests/data/cifar10-fixture      OUT default: reference/snapshots/cifar10
        (parity-tests/data/cifar100-fixture -> reference/snapshots/cifar100)

The dataset is the one whose folder FIXTURE/p2 holds: cifar-10-batches-py (torchvision.datasets.CIFAR10) or
cifar-100-python (CIFAR100, fine labels).

OUT/dataset.json   per split (train, test): count, labels, per-image byte sums, sha256 of the N x 3 x 32 x 32 (CHW)
                   bytes, a few pixels, and the class names; read by torchvision.datasets.CIFAR10 (CIFAR100) from the
                   protocol-2 folder, checked identical for the protocol-4 folder (where there is one) and for the
                   extracted .tar.gz.
OUT/augment.json   torch.manual_seed(SEED); a DataLoader(batch_size=16, shuffle=True) over CIFAR10(train,
                   transform=Compose([RandomCrop(32, padding=4), RandomHorizontalFlip(), PILToTensor()])) for
                   EPOCHS epochs, a DataLoader(test, batch_size=16, shuffle=False) pass after each epoch; per batch:
                   labels, byte sum and sha256 of the uint8 N x 3 x 32 x 32 batch.
The fixture's md5s are not the published ones, so the integrity check is switched off (nothing else).
"""
import hashlib
import json
import os
import sys
import tarfile
import tempfile

import numpy as np
import torch
import torchvision
from torchvision import transforms

SEED, EPOCHS, BATCH = 7, 2, 16
PIXELS = [0, 1, 31, 32, 1023, 1024, 2047, 2048, 3071]


def load_meta_unchecked(self):
    import pickle
    path = os.path.join(self.root, self.base_folder, self.meta["filename"])
    with open(path, "rb") as infile:
        data = pickle.load(infile, encoding="latin1")
        self.classes = data[self.meta["key"]]
    self.class_to_idx = {c: i for i, c in enumerate(self.classes)}


def unchecked(base):
    """torchvision's class with its integrity check off and _load_meta the same code minus the md5 check."""
    return type(base.__name__, (base,), {"_check_integrity": lambda self: True, "_load_meta": load_meta_unchecked})


FIXTURES = {"cifar-10-batches-py": unchecked(torchvision.datasets.CIFAR10), "cifar-100-python": unchecked(torchvision.datasets.CIFAR100)}
Fixture = FIXTURES["cifar-10-batches-py"]   # main() picks the class from the fixture's folder


def split(root, train):
    ds = Fixture(root, train=train, download=False)
    chw = np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2))
    flat = chw.reshape(len(chw), -1)
    return {
        "count": int(len(chw)),
        "labels": [int(t) for t in ds.targets],
        "sums": [int(s) for s in flat.astype(np.int64).sum(axis=1)],
        "sha256": hashlib.sha256(chw.tobytes()).hexdigest(),
        "pixels": {str(p): [int(v) for v in flat[:, p]] for p in PIXELS},
        "classes": list(ds.classes),
    }


def dataset(fixture):
    snap = {"train": split(os.path.join(fixture, "p2"), True), "test": split(os.path.join(fixture, "p2"), False)}
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(os.path.join(fixture, Fixture.filename), "r:gz") as tar:
            tar.extractall(tmp)
        for root in [r for r in (os.path.join(fixture, "p4"), tmp) if os.path.isdir(r)]:
            for name, train in (("train", True), ("test", False)):
                assert split(root, train) == snap[name], f"{root} {name} differs from the protocol-2 folder"
    return snap


def augment(fixture):
    root = os.path.join(fixture, "p2")
    aug = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(), transforms.PILToTensor()])
    train = Fixture(root, train=True, transform=aug)
    test = Fixture(root, train=False, transform=transforms.PILToTensor())
    torch.manual_seed(SEED)
    train_loader = torch.utils.data.DataLoader(train, batch_size=BATCH, shuffle=True)
    test_loader = torch.utils.data.DataLoader(test, batch_size=BATCH, shuffle=False)
    epochs = []
    for _ in range(EPOCHS):
        batches = []
        for x, y in train_loader:
            assert x.dtype == torch.uint8
            batches.append({
                "labels": [int(v) for v in y],
                "sum": int(x.to(torch.int64).sum()),
                "sha256": hashlib.sha256(x.contiguous().numpy().tobytes()).hexdigest(),
            })
        for _x, _y in test_loader:
            pass
        epochs.append(batches)
    return {"seed": SEED, "batch_size": BATCH, "epochs": epochs}


def main():
    here = lambda *p: os.path.join(os.path.dirname(os.path.abspath(__file__)), *p)   # noqa: E731 (also run with -c and both arguments)
    global Fixture
    fixture = sys.argv[1] if len(sys.argv) > 1 else here("..", "parity-tests", "data", "cifar10-fixture")
    out = sys.argv[2] if len(sys.argv) > 2 else here("snapshots", "cifar10")
    Fixture = next(cls for folder, cls in FIXTURES.items() if os.path.isdir(os.path.join(fixture, "p2", folder)))
    os.makedirs(out, exist_ok=True)
    for name, make in (("dataset.json", dataset), ("augment.json", augment)):
        with open(os.path.join(out, name), "w") as f:
            json.dump(make(fixture), f, indent=1, sort_keys=True)
            f.write("\n")


if __name__ == "__main__":
    main()
