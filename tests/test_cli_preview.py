"""``cropsearch preview``: a PNG of a policy's crops, and one-line errors for bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from PIL import Image

from search.cli import main
from search.crop.policy import CropPolicy
from search.results.export import FORMAT, write_policy_file

DATA = "shapes:train=4,val=8,test=4"


def _png_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.verify()
    with Image.open(path) as image:
        return image.size


def test_preview_writes_a_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "grid.png"
    code = main(
        [
            "preview",
            "--set",
            "kind=object",
            "--set",
            "context=0.3",
            "--data",
            DATA,
            "-o",
            str(output),
            "--n",
            "4",
            "--seed",
            "3",
        ]
    )
    assert code == 0
    width, height = _png_size(output)
    # 4 samples in 2 columns of (source, train crop, eval crop): wider than tall, not tiny
    assert 400 <= width <= 2000 and 150 <= height <= 1500 and width > height
    out = capsys.readouterr().out
    assert str(output) in out and "object(context=0.3" in out


def test_preview_prints_the_complete_policy_a_partial_file_resolves_to(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "hand.yaml"
    path.write_text(f"format: {FORMAT}\npolicy: {{kind: object, context: 0.3}}\n")
    output = tmp_path / "grid.png"
    assert main(["preview", "--policy", str(path), "--data", DATA, "-o", str(output)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("policy: {")
    printed = yaml.safe_load(first.removeprefix("policy: "))
    assert printed == CropPolicy(kind="object", context=0.3).to_dict()
    assert list(printed) == list(CropPolicy.model_fields)
    assert output.exists()


def test_preview_reads_a_policy_file_and_one_mode(tmp_path: Path) -> None:
    policy_file = write_policy_file(
        {
            "format": FORMAT,
            "policy": CropPolicy(kind="random_resized", fraction=0.3, size=32).to_dict(),
        },
        tmp_path / "best_policy.yaml",
    )
    both, eval_only = tmp_path / "both.png", tmp_path / "eval.png"
    common = ["--policy", str(policy_file), "--set", "fit=letterbox", "--data", DATA, "--n", "4"]
    assert main(["preview", *common, "-o", str(both)]) == 0
    assert main(["preview", *common, "--eval", "-o", str(eval_only)]) == 0
    # one crop column per sample fewer: 2 of 3 panels per sample
    assert _png_size(eval_only)[0] < 0.85 * _png_size(both)[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--set", "context"], "expected FIELD=VALUE"),
        (["--set", "=0.3"], "expected FIELD=VALUE"),
        (["--set", "colour=red"], "unknown policy field 'colour'"),
        (["--set", "kind=objekt"], "'kind' = 'objekt' must be one of"),
        (["--set", "context=5"], "'context' = 5 is outside the allowed range [-0.25, 2.0]"),
        (["--set", "size=[48, 4]"], "'size' = [48, 4] is outside the allowed range [8, 1024]"),
        (["--set", "size=[48,"], "not valid YAML"),
        (["--policy", "missing.yaml"], "no such policy file"),
        (["--set", "context=true"], "policy field 'context' = True: a boolean is not a number"),
        (["--n", "0"], "--n"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], expected: str
) -> None:
    output = tmp_path / "grid.png"
    code = main(["preview", *args, "--data", DATA, "-o", str(output)])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert expected in err and "Traceback" not in err
    if args[0] == "--set":
        assert f"--set '{args[1]}'" in err
    assert not output.exists()
