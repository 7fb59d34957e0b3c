"""Writes a small CIFAR-100 fixture in torchvision's exact on-disk format (the CIFAR-10 fixture's writer, CIFAR-100's layout).

    /usr/bin/python3 reference/make_cifar100_fixture.py [OUT]     (default: parity-tests/data/cifar100-fixture)

OUT/p2/cifar-100-python/   train, test and meta pickled as the published ones are: protocol 2, written the way
                           Python 2's cPickle wrote them (see make_cifar_fixture.py's Py2Pickler).
OUT/cifar-100-python.tar.gz  that folder packed as the published archive is (folder entry, then its files).

Content: a train file of 40 images and a test file of 20 (make_cifar_fixture.py's image-like pictures), each a dict
with the published keys in the published order: filenames, batch_label, fine_labels (0..99), coarse_labels (0..19,
drawn independently: nothing reads them), data (uint8 N x 3072); meta holds fine_label_names and coarse_label_names,
CIFAR-100's real class names. Deterministic: running the script twice gives identical bytes.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_cifar_fixture import images, py2_dumps, write_archive  # noqa: E402

SIZES = {"train": 40, "test": 20}
FINE = ["apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
        "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
        "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
        "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
        "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
        "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
        "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
        "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
        "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger", "tractor",
        "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm"]
COARSE = ["aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables", "household_electrical_devices",
          "household_furniture", "insects", "large_carnivores", "large_man-made_outdoor_things",
          "large_natural_outdoor_scenes", "large_omnivores_and_herbivores", "medium_mammals", "non-insect_invertebrates",
          "people", "reptiles", "small_mammals", "trees", "vehicles_1", "vehicles_2"]


def files(rng):
    out = {}
    for name, label in (("train", "training batch 1 of 1"), ("test", "testing batch 1 of 1")):
        n = SIZES[name]
        data = images(rng, n)
        out[name] = {
            "filenames": [f"fixture_{name}_{k:03d}.png" for k in range(n)],
            "batch_label": label,
            "fine_labels": [int(v) for v in rng.integers(0, 100, size=n)],
            "coarse_labels": [int(v) for v in rng.integers(0, 20, size=n)],
            "data": data,
        }
    out["meta"] = {"fine_label_names": FINE, "coarse_label_names": COARSE}
    return out


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "parity-tests", "data", "cifar100-fixture")
    objs = files(np.random.default_rng(20241206))
    folder = os.path.join(out, "p2", "cifar-100-python")
    os.makedirs(folder, exist_ok=True)
    for name, obj in objs.items():
        with open(os.path.join(folder, name), "wb") as f:
            f.write(py2_dumps(obj))
    write_archive(os.path.join(out, "cifar-100-python.tar.gz"), "cifar-100-python", objs)

if __name__ == "__main__":
    main()
