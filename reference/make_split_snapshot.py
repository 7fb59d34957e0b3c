#!/usr/bin/env python3
"""Writes snapshots/split/random_split.json: the validation splits (data.val_split) that the reference program draws,
torch.utils.data.random_split(range(n), [n - floor(n*f), floor(n*f)], generator=torch.Generator().manual_seed(seed)),
for a few (n, f, seed). randperm on a CPU generator is integer arithmetic: the file does not depend on the kernel set.

    /usr/bin/python3 reference/make_split_snapshot.py [--out DIR]   (default DIR: reference/snapshots)

Each case records both parts' lengths, their first and last 8 indices and the sha256 of the indices written as
decimal numbers joined by ",", and the validation length random_split itself computes from the fractions [1 - f, f].
"""
import argparse
import hashlib
import json
import os
import sys

import torch

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import resnet_mnist as rm  # noqa: E402

# (n, fraction, seed): tiny, the sample's sizes, a fraction whose product is not exact (100 * 0.29 = 28.999...),
# and the full MNIST training set.
CASES = [(10, 0.3, 0), (64, 0.25, 0), (100, 0.29, 3), (160, 0.2, 42), (9000, 0.1, 0), (60000, 0.1, 0), (60000, 1 / 6, 12345)]


def digest(indices):
    return hashlib.sha256(",".join(str(i) for i in indices).encode()).hexdigest()


def record(indices):
    return {"length": len(indices), "first": indices[:8], "last": indices[-8:], "sha256": digest(indices)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(here, "snapshots"))
    args = ap.parse_args()
    cases = []
    for n, f, seed in CASES:
        train, val = rm.validation_split(range(n), f, seed)
        by_fractions = torch.utils.data.random_split(range(n), [1 - f, f], generator=torch.Generator().manual_seed(seed))
        cases.append({"n": n, "fraction": f, "seed": seed, "train": record(list(train.indices)),
                      "validation": record(list(val.indices)), "validation_length_from_fractions": len(by_fractions[1])})
    out = os.path.join(args.out, "split")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "random_split.json"), "w") as fh:
        json.dump({"meta": {"torch": torch.__version__}, "cases": cases}, fh, indent=1)
        fh.write("\n")
    print(f"{len(cases)} cases -> {os.path.join(out, 'random_split.json')}")


if __name__ == "__main__":
    main()
