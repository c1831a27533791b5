"""``.ci/resolve-platforms`` fails when a dependency loses a supported platform (it asks the
package index: network to PyPI)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

pytestmark = pytest.mark.slow


def test_a_dependency_without_a_macos_wheel_fails_the_check(tmp_path: Path) -> None:
    """The dependency cropsearch had before: tensorflow-cpu (no macOS wheel), and beside it
    the cuda extra's tensorflow, a second TensorFlow distribution."""
    pyproject = (REPO / "pyproject.toml").read_text()
    assert '"tensorflow>=2.21,<2.22",' in pyproject
    (tmp_path / "pyproject.toml").write_text(
        pyproject.replace('"tensorflow>=2.21,<2.22",', '"tensorflow-cpu>=2.21,<2.22",')
    )
    uv = str(Path(sys.executable).parent / "uv")
    done = subprocess.run(
        [str(REPO / ".ci" / "resolve-platforms"), str(tmp_path / "pyproject.toml")],
        capture_output=True, text=True, timeout=600, env={"UV": uv, "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "aarch64-apple-darwin-py3.11 does not resolve from wheels" in done.stderr
    assert "tensorflow-cpu" in done.stderr
    assert "installs several TensorFlow distributions" in done.stderr
    assert "resolved x86_64-manylinux_2_28, Python 3.11" in done.stdout
