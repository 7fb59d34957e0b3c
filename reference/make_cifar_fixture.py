"""Writes a small CIFAR-10 fixture in torchvision's exact on-disk format.

    /usr/bin/python3 reference/make_cifar_fixture.py [OUT]     (default: parity-tests/data/cifar10-fixture)

OUT/p2/cifar-10-batches-py/   pickles laid out as the published ones: protocol 2, written the way Python 2's
                              cPickle wrote them (every str, the keys and the array's raw bytes alike, is a py2
                              `str`: SHORT_BINSTRING / BINSTRING; globals by GLOBAL; memo by BINPUT).
OUT/p4/cifar-10-batches-py/   the same objects re-pickled by Python 3 with protocol 4 (FRAME, MEMOIZE,
                              STACK_GLOBAL, SHORT_BINUNICODE, BINBYTES).
OUT/cifar-10-python.tar.gz    the p2 folder packed as the published archive is (folder entry, then its files).
OUT/extra/test_batch_head.pyN.pM   the first 4 test images and their labels, pickled by Python 3 with protocol M
                              (2: bytes as _codecs.encode(text, 'latin1'); 3; 5), for the unpickler's other paths.

Content: 5 training batches of 18 images and a test batch of 18, seeded pseudo-random but image-like (smooth
colour gradients plus a few blobs and a little noise), labels 0..9, the real CIFAR-10 class names. Deterministic:
running the script twice gives identical bytes.
"""
import io
import os
import pickle
import sys
import tarfile

import numpy as np

PER_BATCH = 18
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


class Py2Pickler(pickle._Pickler):
    """Protocol 2 as Python 2 wrote it: bytes and str both become py2 `str` (BINSTRING / SHORT_BINSTRING)."""

    def _save_py2_str(self, raw):
        n = len(raw)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + raw)
        else:
            self.write(pickle.BINSTRING + n.to_bytes(4, "little") + raw)

    def save_bytes(self, obj):
        self._save_py2_str(obj)
        self.memoize(obj)

    def save_str(self, obj):
        self._save_py2_str(obj.encode("latin1"))
        self.memoize(obj)

    dispatch = dict(pickle._Pickler.dispatch)
    dispatch[bytes] = save_bytes
    dispatch[str] = save_str


def py2_dumps(obj):
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2, fix_imports=True).dump(obj)
    return buf.getvalue()


def images(rng, n):
    yy, xx = np.mgrid[0:32, 0:32].astype(np.float64)
    out = np.empty((n, 3, 32, 32), dtype=np.uint8)
    for k in range(n):
        img = np.empty((3, 32, 32))
        for c in range(3):
            a, b, base = rng.uniform(-4, 4), rng.uniform(-4, 4), rng.uniform(40, 215)
            img[c] = base + a * (xx - 16) + b * (yy - 16)
        for _ in range(rng.integers(1, 4)):
            cy, cx, r = rng.uniform(4, 28), rng.uniform(4, 28), rng.uniform(3, 9)
            colour = rng.uniform(0, 255, size=3)
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
            for c in range(3):
                img[c][mask] = colour[c]
        img += rng.normal(0, 3, size=img.shape)
        out[k] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return out.reshape(n, 3072)


def batches(rng):
    out = {}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for i, name in enumerate(names):
        data = images(rng, PER_BATCH)
        labels = [int(v) for v in rng.integers(0, 10, size=PER_BATCH)]
        label = f"training batch {i + 1} of 5" if i < 5 else "testing batch 1 of 1"
        out[name] = {
            "batch_label": label,
            "labels": labels,
            "data": data,
            "filenames": [f"fixture_{i}_{k:03d}.png" for k in range(PER_BATCH)],
        }
    out["batches.meta"] = {"num_cases_per_batch": PER_BATCH, "label_names": CLASSES, "num_vis": 3072}
    return out


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "parity-tests", "data", "cifar10-fixture")
    objs = batches(np.random.default_rng(20240610))
    for variant, dumps in (("p2", py2_dumps), ("p4", lambda o: pickle.dumps(o, protocol=4))):
        folder = os.path.join(out, variant, "cifar-10-batches-py")
        os.makedirs(folder, exist_ok=True)
        for name, obj in objs.items():
            with open(os.path.join(folder, name), "wb") as f:
                f.write(dumps(obj))
    head = dict(objs["test_batch"], data=objs["test_batch"]["data"][:4], labels=objs["test_batch"]["labels"][:4],
                filenames=objs["test_batch"]["filenames"][:4])
    os.makedirs(os.path.join(out, "extra"), exist_ok=True)
    for protocol in (2, 3, 5):
        with open(os.path.join(out, "extra", f"test_batch_head.py3.p{protocol}"), "wb") as f:
            f.write(pickle.dumps(head, protocol=protocol))
    write_archive(os.path.join(out, "cifar-10-python.tar.gz"), "cifar-10-batches-py", objs)

def write_archive(path, folder, objs):
    """torchvision's tar.gz of `folder` holding each of `objs` pickled as Python 2 does, with fixed metadata so that
    its bytes do not depend on when or by whom it is made."""
    import gzip
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        def info(name, size, kind):
            ti = tarfile.TarInfo(name)
            ti.size, ti.type, ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = size, kind, 1255000000, 1000, 1000, "kriz", "kriz"
            ti.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
            return ti
        tar.addfile(info(folder, 0, tarfile.DIRTYPE))
        for name in sorted(objs):
            data = py2_dumps(objs[name])
            tar.addfile(info(f"{folder}/{name}", len(data), tarfile.REGTYPE), io.BytesIO(data))
    with open(path, "wb") as f:
        with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0, compresslevel=9) as gz:
            gz.write(raw.getvalue())


if __name__ == "__main__":
    main()
