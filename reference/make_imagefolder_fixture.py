"""Writes a small image-folder dataset in torchvision's ImageFolder layout, for the tests.

    /usr/bin/python3 reference/make_imagefolder_fixture.py [OUT]     (default: parity-tests/data/imagefolder-fixture)

OUT/train/<class>/…, OUT/val/<class>/… with classes cat, dog, emu: PNGs (grey, RGB, RGBA, palette with tRNS,
grey+alpha, 16-bit grey, one interlaced) and JPEGs (RGB at 4:4:4, 4:2:2 and 4:2:0, grey, CMYK) of assorted sizes
(9..29 pixels, portrait and landscape), one image in a nested folder, one with an upper-case extension, and a text
file that ImageFolder skips. Deterministic: running the script twice gives identical bytes (with the same Pillow
and libjpeg).
"""
import os
import sys

import numpy as np
from PIL import Image

here = os.path.dirname(os.path.abspath(__file__))
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "parity-tests", "data", "imagefolder-fixture")
rng = np.random.default_rng(23)
CLASSES = ["cat", "dog", "emu"]
# (mode, extension, save options)
KINDS = [("RGB", "jpg", {"quality": 90, "subsampling": 0}), ("RGBA", "png", {}), ("L", "png", {}),
         ("RGB", "jpg", {"quality": 75, "subsampling": 2}), ("P", "png", {"transparency": 3}), ("LA", "png", {}),
         ("RGB", "png", {"interlace": 1}), ("L", "jpg", {"quality": 85}), ("I;16", "png", {}),
         ("RGB", "jpeg", {"quality": 80, "subsampling": 1}), ("CMYK", "jpg", {"quality": 90}), ("RGB", "png", {})]


def picture(w, h, c, tint):
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([0.5 + 0.35 * np.sin((k + 1) * x / (3 + tint) + (2 - k) * y / 4 + tint) for k in range(c)], -1)
    img += 0.03 * rng.standard_normal(img.shape)
    return np.clip(img * 255, 0, 255).astype(np.uint8)


def image(mode, w, h, tint):
    if mode == "P":
        return Image.fromarray(picture(w, h, 3, tint)).quantize(16)
    if mode == "I;16":
        return Image.fromarray(picture(w, h, 1, tint)[..., 0].astype(np.uint16) * 3 + 40, "I;16")
    if mode in ("L", "LA", "RGB", "RGBA", "CMYK"):
        c = len(mode)
        a = picture(w, h, c, tint)
        return Image.fromarray(a[..., 0] if c == 1 else a, mode)
    raise ValueError(mode)


n = 0
for split, per_class in (("train", 4), ("val", 2)):
    for ci, cls in enumerate(CLASSES):
        for k in range(per_class):
            mode, ext, opts = KINDS[n % len(KINDS)]
            w, h = int(rng.integers(9, 30)), int(rng.integers(9, 30))
            folder = os.path.join(out, split, cls)
            if split == "train" and cls == "dog" and k == 3:
                folder = os.path.join(folder, "more")                    # ImageFolder walks sub-folders
            if split == "train" and cls == "emu" and k == 2:
                ext = ext.upper()                                        # extensions match in any case
            os.makedirs(folder, exist_ok=True)
            image(mode, w, h, ci + 0.3 * k).save(os.path.join(folder, f"{cls}{k:02d}.{ext}"), **opts)
            n += 1
with open(os.path.join(out, "train", "cat", "notes.txt"), "w") as f:
    f.write("not an image: ImageFolder skips it by its extension\n")
