"""The data report, the preview grid, the ``cropsearch data`` command and the study's report."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from search.data import load_dataset
from search.data.report import BOX_COLOR, format_report, preview_grid


@pytest.fixture
def spec(tmp_path: Path) -> str:
    """A small csv dataset with a missing file, a bad row and a clipped box."""
    root = tmp_path / "ds"
    root.mkdir()
    rows: list[list[object]] = []
    for i in range(10):
        label = ("circle", "square")[i % 2]
        Image.new("RGB", (50, 40), (20 * i, 100, 50)).save(root / f"{i}.png")
        rows.append([f"{i}.png", label, 5, 5, 5 + 10 + i, 25])
    rows += [["gone.png", "circle", 1, 1, 4, 4], ["0.png", "square", "x", 1, 4, 4]]
    rows.append(["1.png", "square", 40, 30, 60, 50])  # clipped to (40, 30, 50, 40)
    path = root / "labels.csv"
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["path", "label", "x_min", "y_min", "x_max", "y_max"])
        writer.writerows(rows)
    return f"csv:{path},max_side=0,val=0.2,test=0.2"


def test_format_report_lists_classes_boxes_skips_and_clips(spec: str) -> None:
    data = load_dataset(spec)
    text = format_report(data)
    lines = text.splitlines()
    assert text.endswith("\n")
    assert lines[0] == f"data: {spec}"
    assert lines[1] == f"fingerprint: {data.fingerprint}"
    assert lines[2] == "samples: train 7, val 2, test 2; 2 classes"
    assert lines[3] == "canvas: 40x50 (images zero-padded to the largest)"
    table = lines[lines.index("samples per class:") + 1 :][:4]
    assert table[0].split() == ["class", "train", "val", "test"]
    counts = {row.split()[0]: [int(v) for v in row.split()[1:]] for row in table[1:]}
    for k, name in enumerate(("circle", "square")):
        expected = [int((getattr(data, s).labels == k).sum()) for s in ("train", "val", "test")]
        assert counts[name] == expected
    assert counts["total"] == [7, 2, 2]
    assert "  width: 10.0 / 14.0 / 19.0" in lines  # boxes 10..19 wide, and the clipped one 10
    assert "  height: 10.0 / 20.0 / 20.0" in lines
    assert "skipped: 2" in lines
    assert "  malformed annotation: 1  e.g. labels.csv:13 (coordinate not a number)" in lines
    assert "  missing file: 1  e.g. gone.png" in lines
    assert "clipped boxes: 1 (partly outside the image, clipped)" in lines
    assert any(line.startswith("cache: decoded and stored in ") for line in lines)


def test_preview_grid_draws_boxes(spec: str, tmp_path: Path) -> None:
    data = load_dataset(spec)
    path = preview_grid(data, tmp_path / "out" / "grid.png", n=6)
    image = np.asarray(Image.open(path).convert("RGB"))
    assert image.shape == (2 * (128 + 14), 4 * 128, 3)
    assert (image == BOX_COLOR).all(axis=-1).sum() > 50


def test_preview_of_shapes_benchmark(tmp_path: Path) -> None:
    data = load_dataset("shapes:train=20,val=5,test=5")
    path = preview_grid(data, tmp_path / "grid.png")
    assert Image.open(path).size == (4 * 128, 4 * (128 + 14))


def test_data_command_prints_the_report(
    spec: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from search.cli import main

    assert main(["data", spec, "--preview", str(tmp_path / "p.png")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"data: {spec}\n")
    assert "clipped boxes: 1" in out
    assert out.rstrip().endswith(f"preview: {tmp_path / 'p.png'}")
    assert (tmp_path / "p.png").exists()


def test_data_command_bad_data_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from search.cli import main

    assert main(["data", f"voc:{tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert (
        err == f"error: {tmp_path}: no Annotations folder (a VOC dataset has Annotations/*.xml)\n"
    )


def test_study_logs_the_same_report(spec: str) -> None:
    from search.engines.base import data_report

    data = load_dataset(spec)
    assert data_report(data) == format_report(data)
