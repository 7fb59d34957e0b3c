"""Writes images of every PNG colour type / bit depth (plain and interlaced) and JPEGs of assorted qualities,
subsamplings and modes into OUT, with what Pillow and torchvision make of each: convert('RGB') bytes, bilinear
resizes to many sizes, the eval transform, and RandomResizedCrop + RandomHorizontalFlip under a seed.

    /usr/bin/python3 reference/make_pillow_checks.py OUT [COUNT]

OUT/manifest.json lists every image and the raw RGB (HWC uint8) files beside it. The C# tests compare byte for byte.
"""
import io, json, os, random, struct, sys, zlib

import numpy as np
import torch
from PIL import Image
import torchvision.transforms as T

out = sys.argv[1]
count = int(sys.argv[2]) if len(sys.argv) > 2 else 96
os.makedirs(out, exist_ok=True)
rng = random.Random(1234)
nrng = np.random.default_rng(1234)


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def pack_row(samples, depth):
    """One row of samples (ints) packed at `depth` bits, big-endian."""
    if depth == 8:
        return bytes(samples)
    if depth == 16:
        return b"".join(struct.pack(">H", s) for s in samples)
    bits = "".join(format(s, f"0{depth}b") for s in samples)
    bits += "0" * (-len(bits) % 8)
    return bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8))


def filter_row(row, prev, bpp, kind):
    out = bytearray(len(row))
    for i in range(len(row)):
        a = row[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        if kind == 0: p = 0
        elif kind == 1: p = a
        elif kind == 2: p = b
        elif kind == 3: p = (a + b) // 2
        else:
            pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
            p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
        out[i] = (row[i] - p) & 0xFF
    return bytes(out)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def write_png(path, samples, colour, depth, interlace, palette=None, trns=None):
    """samples: H x W x C ints. Writes a PNG with random row filters."""
    h, w, c = samples.shape
    bpp = max(1, c * depth // 8)

    def image_data(sub):
        sh, sw = sub.shape[:2]
        rows, prev = [], bytes(len(pack_row([0] * (sw * c), depth)))
        for y in range(sh):
            row = pack_row([int(v) for v in sub[y].reshape(-1)], depth)
            kind = rng.randrange(5)
            rows.append(bytes([kind]) + filter_row(row, prev, bpp, kind))
            prev = row
        return b"".join(rows)

    if interlace:
        raw = b"".join(image_data(samples[y0::dy, x0::dx]) for x0, y0, dx, dy in ADAM7
                       if samples[y0::dy, x0::dx].size)
    else:
        raw = image_data(samples)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, interlace))
    if palette is not None:
        png += chunk(b"PLTE", palette)
    if trns is not None:
        png += chunk(b"tRNS", trns)
    z = zlib.compress(raw, 9)
    for i in range(0, len(z), 700):  # several IDAT chunks
        png += chunk(b"IDAT", z[i:i + 700])
    png += chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def smooth(h, w, c, top):
    """A smooth random image (gradients + noise), values 0..top."""
    y, x = np.mgrid[0:h, 0:w]
    img = np.empty((h, w, c))
    for k in range(c):
        a, b, p = nrng.uniform(-1, 1, 3)
        img[..., k] = 0.5 + 0.3 * np.sin(a * x / 7 + b * y / 5 + p) + 0.15 * nrng.standard_normal((h, w))
    return np.clip(np.round(img * top), 0, top).astype(np.int64)


PNG_KINDS = [(0, 1), (0, 2), (0, 4), (0, 8), (0, 16), (2, 8), (2, 16), (3, 1), (3, 2), (3, 4), (3, 8),
             (4, 8), (4, 16), (6, 8), (6, 16)]
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
records = []


def size():
    return rng.choice([1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 97, 128, 150, 203, 256, 301])


for n in range(count):
    w, h = size(), size()
    name = f"img{n:03d}"
    if n % 2 == 0:
        colour, depth = PNG_KINDS[(n // 2) % len(PNG_KINDS)]
        interlace = (n // 2) % 3 == 1
        c = CHANNELS[colour]
        palette = trns = None
        if colour == 3:
            entries = rng.randrange(1, 2 ** depth + 1) if n % 4 == 0 else 2 ** depth  # some indices past the palette's end
            palette = bytes(rng.randrange(256) for _ in range(3 * entries))
            samples = nrng.integers(0, 2 ** depth, (h, w, 1))
            if n % 3 == 0:
                trns = bytes(rng.randrange(256) for _ in range(min(entries, 5)))
        else:
            samples = smooth(h, w, c, 2 ** depth - 1)
            if depth == 16 and colour == 0:
                samples = samples // rng.choice([1, 64, 256])  # mode I: values above 255 clip
            if colour in (0, 2) and n % 3 == 0:
                trns = struct.pack(">" + "H" * c, *[rng.randrange(2 ** depth) for _ in range(c)])
        file = name + ".png"
        write_png(os.path.join(out, file), samples, colour, depth, int(interlace), palette, trns)
        kind = f"png colour {colour} depth {depth}{' interlaced' if interlace else ''}{' tRNS' if trns else ''}"
    else:
        mode = ["RGB", "RGB", "RGB", "L", "CMYK"][(n // 2) % 5]
        quality = rng.choice([10, 50, 75, 90, 95, 100])
        subsampling = rng.choice([0, 1, 2])
        progressive = quality < 95 and rng.random() < 0.3
        base = smooth(h, w, 4 if mode == "CMYK" else (1 if mode == "L" else 3), 255).astype(np.uint8)
        im = Image.fromarray(base[..., 0] if mode == "L" else base, mode)
        file = name + ".jpg"
        im.save(os.path.join(out, file), quality=quality, subsampling=subsampling, progressive=progressive)
        kind = f"jpeg {mode} q{quality} subsampling {subsampling}{' progressive' if progressive else ''}"

    img = Image.open(os.path.join(out, file)).convert("RGB")
    rec = {"file": file, "kind": kind, "width": img.width, "height": img.height, "decoded": name + ".rgb"}
    img.tobytes() and open(os.path.join(out, rec["decoded"]), "wb").write(np.asarray(img).tobytes())
    rec["resized"] = []
    for k in range(4):
        tw, th = rng.choice([1, 2, 5, 13, 32, 57, 100, 224, 333]), rng.choice([1, 3, 8, 31, 64, 99, 224, 250])
        f = f"{name}.r{k}.rgb"
        np.asarray(img.resize((tw, th), Image.BILINEAR)).tofile(os.path.join(out, f))
        rec["resized"].append({"width": tw, "height": th, "file": f})
    image_size = rng.choice([8, 16, 32, 57, 224])
    resize_size = rng.choice([image_size, int(image_size / 0.875), image_size + 1, max(1, image_size // 2)])
    rec["image_size"], rec["resize_size"] = image_size, resize_size
    ev = T.Compose([T.Resize(resize_size), T.CenterCrop(image_size)])(img)
    rec["eval"] = f"{name}.eval.rgb"
    np.asarray(ev).tofile(os.path.join(out, rec["eval"]))
    rec["seed"] = n
    torch.manual_seed(n)
    tr = T.Compose([T.RandomResizedCrop(image_size), T.RandomHorizontalFlip()])
    rec["train"] = []
    for k in range(3):
        f = f"{name}.t{k}.rgb"
        np.asarray(tr(img)).tofile(os.path.join(out, f))
        rec["train"].append(f)
    rec["after"] = torch.rand(1).item()  # the generator's state after the draws
    records.append(rec)

with open(os.path.join(out, "manifest.json"), "w") as f:
    json.dump(records, f, indent=1)
print(len(records))
