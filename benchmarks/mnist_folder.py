"""Build a box-free class folder of real MNIST digits, as a user's ``image_dataset_from_directory``
data would look, for the box-free result in the README.

Writes ``OUT/train/<digit>/<n>.png`` (``--train`` digits per class from the MNIST training file)
and ``OUT/test/<digit>/<n>.png`` (``--test`` per class from the test file), 28x28 grayscale
PNGs; ``folder:OUT`` then carves val from train (15%) and keeps the real test digits as test.
Prints the commands that inspect and search it (``spaces/classic.yaml`` is the default space
on box-free data).

Usage::

    .venv/bin/python benchmarks/mnist_folder.py --out /tmp/mnist_folder --train 300 --test 100
    cropsearch data folder:/tmp/mnist_folder --preview /tmp/mnist_folder.png
    cropsearch search --data folder:/tmp/mnist_folder --trials 12 --epochs 4 --study mnist-folder
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from search.data.mnist import FILES, find_file, read_idx

REPO = Path(__file__).resolve().parents[1]


def write_split(out: Path, images: np.ndarray, labels: np.ndarray, per_class: int) -> int:
    """Write the first ``per_class`` digits of each label under ``out/<digit>/``; the count."""
    written = 0
    for digit in np.unique(labels):
        folder = out / str(int(digit))
        folder.mkdir(parents=True, exist_ok=True)
        for index in np.flatnonzero(labels == digit)[:per_class]:
            Image.fromarray(images[index]).save(folder / f"{index:05d}.png")
            written += 1
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", type=Path, default=REPO.parent / "shared" / "data" / "mnist")
    parser.add_argument("--out", type=Path, default=Path("/tmp/mnist_folder"))
    parser.add_argument("--train", type=int, default=300, help="training digits per class")
    parser.add_argument("--test", type=int, default=100, help="test digits per class")
    args = parser.parse_args()
    if args.out.exists():
        shutil.rmtree(args.out)
    counts = {}
    for split, per_class, stem in (("train", args.train, "train"), ("test", args.test, "test")):
        images = read_idx(find_file(args.mnist, FILES[f"{stem}_images"]), 3)
        labels = read_idx(find_file(args.mnist, FILES[f"{stem}_labels"]), 1)
        counts[split] = write_split(args.out / split, images, labels, per_class)
    print(f"wrote {counts['train']} train and {counts['test']} test digits under {args.out}")
    print(f"cropsearch data folder:{args.out}")
    print(f"cropsearch search --data folder:{args.out} --trials 12 --epochs 4 --study mnist-folder")


if __name__ == "__main__":
    main()
