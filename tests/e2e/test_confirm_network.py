"""``search --confirm-model`` and ``confirm --model/--size`` as a user runs them: a separate
confirmation keyed by the network, resumed and idempotent, shown beside the study's, and
carried by the exported file; a bad ``--size`` or ``keras:NAME`` is one line."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
import yaml
from conftest import search_args

from search.cli import main

pytestmark = pytest.mark.slow


def _run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    return code, out.getvalue()


def test_confirm_on_another_network_and_size_then_export(tmp_path: Path) -> None:
    args = search_args(tmp_path, "net", trials=2, confirm=True)
    code, out = _run([*args, "--confirm-model", "user_models:any_size"])
    assert code == 0, out
    assert "confirmation on user_models:any_size" in out
    stores = ["--storage", f"sqlite:///{tmp_path}/optuna.db",
              "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db"]  # fmt: skip
    again = ["confirm", "--study", "net", "--top", "1", "--repeats", "2", *stores]
    code, out = _run([*again, "--model", "user_models:any_size"])
    assert code == 0 and "up to 0 runs to train, 4 already done" in out  # idempotent
    code, out = _run([*again, "--size", "56,56"])  # the compact CNN at another size
    assert code == 0 and "up to 4 runs to train, 0 already done" in out
    assert "confirmation on compact_cnn@56x56" in out
    code, out = _run(["export", "--study", "net", "-o", str(tmp_path / "p.yaml"), *stores])
    assert code == 0, out
    document = yaml.safe_load((tmp_path / "p.yaml").read_text())
    networks = [n["network"] for n in document["networks"]]
    assert networks == ["study", "compact_cnn@56x56", "user_models:any_size"]
    assert all(len(n["policies"]) == 2 for n in document["networks"])


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--size", "96"], "--size '96': expected H,W"),
        (["--model", "keras:NoSuchNet"], "keras.applications has no network 'NoSuchNet'"),
    ],
)
def test_bad_network_flags_are_one_line(
    tiny_search: object, flags: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tiny_search.folder  # type: ignore[attr-defined]
    code = main(["confirm", "--study", "tiny", "--storage", f"sqlite:///{folder}/optuna.db",
                 "--tracking-uri", f"sqlite:///{folder}/mlflow.db", *flags])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
