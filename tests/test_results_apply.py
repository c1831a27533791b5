"""``cropsearch apply``: a split's crops as PNGs plus a manifest, the search's own pixels."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from search.cli import main
from search.crop.cut import crop_samples
from search.crop.policy import CropPolicy
from search.data import load_dataset
from search.results.apply import class_folders
from search.results.export import FORMAT, write_policy_file

DATA = "shapes:train=6,val=10,test=4"
POLICY = CropPolicy(kind="object_random", context=0.2, fraction=0.3, size=(24, 32))


def _policy_file(folder: Path, policy: CropPolicy = POLICY) -> Path:
    return write_policy_file({"format": FORMAT, "policy": policy.to_dict()}, folder / "p.json")


def _read(out: Path) -> tuple[list[dict[str, str]], np.ndarray]:
    with (out / "manifest.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    crops = np.stack([np.asarray(Image.open(out / row["file"])) for row in rows])
    return rows, crops


@pytest.mark.parametrize("train", [False, True])
def test_apply_writes_the_search_crops_and_a_manifest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], train: bool
) -> None:
    out = tmp_path / "crops"
    args = ["apply", "--policy", str(_policy_file(tmp_path)), "--data", DATA, "--out", str(out)]
    if train:
        args += ["--split", "train", "--train", "--seed", "3", "--epoch", "2"]
    assert main(args) == 0
    dataset = load_dataset(DATA)
    split = dataset.train if train else dataset.val
    rows, crops = _read(out)
    assert len(rows) == len(split) and crops.shape == (len(split), 24, 32, 3)
    expected = crop_samples(POLICY, split, training=train, seed=3, epoch=2)
    np.testing.assert_array_equal(crops, expected)
    windows = POLICY.windows(split.sizes, split.boxes, train, 3, 2, np.arange(len(split)))
    for i, row in enumerate(rows):
        name = "train" if train else "val"
        assert row["source"] == f"{name}/{i}"
        assert row["file"] == f"{row['label']}/{name}-{i:06d}.png"
        assert dataset.class_names[int(row["label_index"])] == row["label"]
        assert int(row["label_index"]) == split.labels[i]
        box = [float(row[f"box_{k}"]) for k in ("x_min", "y_min", "x_max", "y_max")]
        window = [float(row[f"window_{k}"]) for k in ("x_min", "y_min", "x_max", "y_max")]
        np.testing.assert_allclose(box, split.boxes[i], atol=1e-4)
        np.testing.assert_allclose(window, windows[i], atol=1e-4)
    printed = capsys.readouterr().out
    assert "skipped 0 samples while loading" in printed
    assert f"wrote {len(split)} crops to {out}" in printed


def test_apply_skips_and_counts_bad_samples(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "ds"
    root.mkdir()
    rows = []
    for i in range(12):
        Image.new("RGB", (40, 30), (20 * i, 100, 200 - 10 * i)).save(root / f"{i}.png")
        rows.append([f"{i}.png", "ab"[i % 2], 2, 3, 30, 25])
    rows += [["missing.png", "a", 1, 1, 5, 5], ["0.png", "b", 50, 2, 60, 10]]
    with (root / "labels.csv").open("w", newline="") as file:
        csv.writer(file).writerows([["path", "label", "x_min", "y_min", "x_max", "y_max"], *rows])
    out = tmp_path / "crops"
    spec = f"csv:{root / 'labels.csv'},val=0.5,test=0.25"
    args = ["apply", "--policy", str(_policy_file(tmp_path)), "--data", spec, "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "skipped 2 samples while loading: box outside image 1, missing file 1" in printed
    assert len(_read(out)[0]) == len(load_dataset(spec).val)


def test_apply_user_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = str(_policy_file(tmp_path))
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "old.png").write_bytes(b"x")
    cases = [
        (["--out", str(tmp_path / "full")], "is not empty"),
        (["--out", str(tmp_path / "o"), "--split", "dev"], "'dev' is not one of"),
        (["--out", str(tmp_path / "o"), "--policy", str(tmp_path / "none.yaml")], "no such"),
    ]
    for extra, message in cases:
        args = ["apply", "--policy", policy, "--data", DATA, *extra]
        assert main(args) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err


def test_class_folders_are_safe_and_distinct() -> None:
    assert class_folders(("cat", "../x", "a/b", "a_b", "", "..")) == [
        "cat", "_x", "a_b", "a_b_3", "class", "class_5",
    ]  # fmt: skip
