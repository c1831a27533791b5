"""``folder:DIR``: class sub-folders without boxes, from real MNIST digits written as PNGs."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pytest
from conftest import MNIST_DIR, REPO, TINY_DATA, search_args
from PIL import Image

from search.data import DataError, load_dataset
from search.data.report import BOX_COLOR, format_report, preview_grid
from search.space import Space


def mnist_digits(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` real MNIST test digits and their labels (skips without the files)."""
    from search.data.mnist import FILES, find_file, read_idx

    if not MNIST_DIR.is_dir():
        pytest.skip(f"real MNIST not found at {MNIST_DIR}")
    images = read_idx(find_file(MNIST_DIR, FILES["test_images"]), 3)[:n]
    labels = read_idx(find_file(MNIST_DIR, FILES["test_labels"]), 1)[:n]
    return images, labels


def digit_folder(root: Path, per_class: int = 6, classes: int = 10) -> Path:
    """``root/<digit>/<n>.png``: ``per_class`` real digits of each of the first ``classes``."""
    images, labels = mnist_digits(2000)
    for digit in range(classes):
        folder = root / str(digit)
        folder.mkdir(parents=True, exist_ok=True)
        for i in np.flatnonzero(labels == digit)[:per_class]:
            Image.fromarray(images[i]).save(folder / f"{i:05d}.png")
    return root


def test_digit_folder_loads_without_boxes(tmp_path: Path) -> None:
    root = digit_folder(tmp_path / "digits", per_class=5)
    data = load_dataset(f"folder:{root},val=0.2,test=0.2")
    assert data.class_names == tuple(str(d) for d in range(10))
    assert not data.has_boxes and not data.val.take(slice(0, 2)).has_boxes
    assert (len(data.train), len(data.val), len(data.test)) == (30, 10, 10)
    for split in ("val", "test"):  # stratified: one image of each digit
        assert sorted(getattr(data, split).labels.tolist()) == list(range(10))
    assert (data.train.boxes == [0, 0, 28, 28]).all()  # each box is its whole image
    assert data.train.images.shape[1:] == (28, 28, 3)
    report = format_report(data)
    assert "boxes: none (box-free data); image sides" in report
    assert "clipped boxes" not in report
    assert "50 image files in 10 class folders, no boxes" in report
    picture = np.asarray(Image.open(preview_grid(data, tmp_path / "grid.png")))
    assert not (picture == BOX_COLOR).all(axis=-1).any()  # no box drawn
    again = load_dataset(f"folder:{root},val=0.2,test=0.2")
    assert not again.has_boxes and again.fingerprint == data.fingerprint  # through the cache
    assert any(note.startswith("cache: loaded") for note in again.report.notes)


def test_split_folders_decide_the_splits(tmp_path: Path) -> None:
    images, labels = mnist_digits(400)
    for split, count in (("train", 6), ("val", 2)):
        for digit in (3, 7):
            folder = tmp_path / "ds" / split / f"digit{digit}"
            folder.mkdir(parents=True)
            chosen = np.flatnonzero(labels == digit)[: 8 if split == "train" else 10]
            for i in chosen[-count:]:
                Image.fromarray(images[i]).save(folder / f"{i}.png")
    data = load_dataset(f"folder:{tmp_path / 'ds'},test=0.25")
    assert data.class_names == ("digit3", "digit7")
    assert (len(data.train), len(data.val), len(data.test)) == (9, 4, 3)  # test from train
    assert any("splits: folders train/, val/" in note for note in data.report.notes)


def test_what_is_ignored_and_what_is_skipped(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    for label in ("ant", "bee"):
        for i in range(3):
            path = root / label / ("deep/er" if i == 2 else "") / f"{i}.JPG"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (20, 16), (i * 40, 90, 200)).save(path, format="JPEG")
    Image.new("RGB", (12, 20)).save(root / "bee" / "tiny.bmp")  # under min_size=13
    (root / ".ipynb_checkpoints").mkdir()
    Image.new("RGB", (5, 5)).save(root / ".ipynb_checkpoints" / "x.png")
    (root / "ant" / ".DS_Store").write_bytes(b"\0")
    (root / "ant" / "notes.txt").write_text("not an image")
    (root / "top.png").write_bytes(b"")
    (root / "empty").mkdir()
    (root / "bee" / "fake.png").write_text("text, not a PNG")
    noise = np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)
    Image.fromarray(noise).save(root / "bee" / "cut.png")
    (root / "bee" / "cut.png").write_bytes((root / "bee" / "cut.png").read_bytes()[:900])
    outside = tmp_path / "outside.png"
    Image.new("RGB", (5, 5)).save(outside)
    (root / "ant" / "link.png").symlink_to(outside)
    data = load_dataset(f"folder:{root},val=0.34,test=0.34,min_size=13")
    assert data.class_names == ("ant", "bee")
    # splits are carved from the 7 images whose header reads; cut.png fails when decoded
    assert len(data.train) + len(data.val) + len(data.test) == 6
    assert dict(data.report.skipped) == {
        "not an image": 1,
        "corrupt image": 1,
        "path outside dataset root": 1,
        "smaller than min_size": 1,
    }
    assert data.report.examples["path outside dataset root"] == ["ant/link.png"]
    notes = "\n".join(data.report.notes)
    assert "class folders without images, left out: empty" in notes
    assert "ignored: 1 files without an image extension, 1 files outside class folders" in notes


def test_empty_or_flat_folder_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "flat").mkdir()
    with pytest.raises(DataError, match=r"flat: no images in class sub-folders"):
        load_dataset(f"folder:{tmp_path / 'flat'}")
    Image.new("RGB", (5, 5)).save(tmp_path / "flat" / "a.png")
    with pytest.raises(DataError, match=r"DIR/<class name>/<image>; 1 files directly in it"):
        load_dataset(f"folder:{tmp_path / 'flat'}")
    with pytest.raises(DataError, match=r"nowhere: no such folder"):
        load_dataset(f"folder:{tmp_path / 'nowhere'}")


def test_exif_orientation_and_modes(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    for i in range(3):
        (root / "turned").mkdir(parents=True, exist_ok=True)
        exif = Image.Exif()
        exif[0x0112] = 6
        Image.new("L", (30, 10), 200).save(root / "turned" / f"{i}.png", exif=exif)
        (root / "alpha").mkdir(parents=True, exist_ok=True)
        Image.new("RGBA", (10, 10), (200, 100, 50, 255)).save(root / "alpha" / f"{i}.png")
    data = load_dataset(f"folder:{root},max_side=0,val=0.34,test=0.34")
    turned = data.class_names.index("turned")
    for samples in (data.train, data.val, data.test):
        for image, size, box, label in zip(
            samples.images, samples.sizes, samples.boxes, samples.labels, strict=True
        ):
            if label == turned:
                assert size.tolist() == [30, 10] and box.tolist() == [0, 0, 10, 30]
                assert image[0, 0].tolist() == [200, 200, 200]
            else:
                assert image[0, 0].tolist() == [200, 100, 50]


def test_space_kinds(tmp_path: Path) -> None:
    default = Space.load(REPO / "spaces" / "default.yaml")
    assert default.object_kinds() == ("object", "object_random")
    classic = Space.load(REPO / "spaces" / "classic.yaml")
    assert classic.kinds() == ("full", "center", "random", "random_resized")
    assert classic.object_kinds() == ()
    fixed = tmp_path / "fixed.yaml"
    fixed.write_text("fixed: {kind: object}\nparams:\n  context: {type: float, low: 0, high: 1}\n")
    assert Space.load(fixed).kinds() == ("full", "object")


def test_crop_grid_draws_no_box_on_box_free_samples(tmp_path: Path) -> None:
    from PIL import ImageColor

    from search.crop.policy import CropPolicy
    from search.results import crop_grid

    data = load_dataset(f"folder:{digit_folder(tmp_path / 'd', 3, 2)},val=0.34,test=0.34")
    picture = crop_grid.crop_grid(
        CropPolicy(kind="center", fraction=0.7), data.val, data.class_names
    )
    pixels = np.asarray(picture)

    def drawn(color: str) -> bool:
        return bool((pixels == ImageColor.getrgb(color)).all(axis=-1).any())

    assert drawn(crop_grid.TRAIN_COLOR) and drawn(crop_grid.EVAL_COLOR)  # the windows only
    assert not drawn(crop_grid.BOX_COLOR)


def _quiet_main(args: list[str]) -> tuple[int, str]:
    from search.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(args)
    return code, out.getvalue()


def test_object_kinds_are_refused_on_box_free_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = digit_folder(tmp_path / "digits", 3, 2)
    args = search_args(tmp_path, "refused")
    args[args.index(TINY_DATA)] = f"folder:{root}"
    code, _ = _quiet_main(args)
    assert code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "Traceback" not in err[0]
    assert (
        "has no boxes, but" in err[0] and "default.yaml can sample object, object_random" in err[0]
    )
    assert "full, center, random, random_resized" in err[0] and "spaces/classic.yaml" in err[0]
    assert not (tmp_path / "optuna.db").exists()  # refused before anything started
    code, _ = _quiet_main(
        [
            "preview",
            "--data",
            f"folder:{root}",
            "--set",
            "kind=object",
            "-o",
            str(tmp_path / "p.png"),
        ]
    )
    assert code == 2
    assert "has no boxes for kind object" in capsys.readouterr().err


@pytest.mark.slow
def test_search_and_export_on_a_digit_folder(tmp_path: Path) -> None:
    root = digit_folder(tmp_path / "digits", 8, 3)
    args = search_args(tmp_path, "folder")
    space_at = args.index("--space")
    del args[space_at : space_at + 2]  # no --space: box-free data searches spaces/classic.yaml
    args[args.index(TINY_DATA)] = f"folder:{root},val=0.25,test=0.25"
    code, output = _quiet_main(args)
    assert code == 0, output
    assert "classic.yaml" in output
    policy = tmp_path / "best.yaml"
    storage = f"sqlite:///{tmp_path}/optuna.db"
    code, output = _quiet_main(
        ["export", "--study", "folder", "--storage", storage, "-o", str(policy)]
    )
    assert code == 0, output
    assert policy.exists()
