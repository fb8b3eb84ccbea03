"""The Makefile's targets run pip only when needed: a new venv, changed dependencies, or a venv that runs another
checkout (`.ci/run` passes a cached venv that may come from another clone). Checked with real `make` on a venv whose
`python` and `ruff` only record how they were called."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")

RECORDER = """#!/bin/sh
echo "$(basename "$0") $*" >> "$(dirname "$0")/../calls.log"
"""


def _checkout(folder: Path) -> Path:
    folder.mkdir()
    for name in ("Makefile", "setup.cfg", "pyproject.toml"):
        shutil.copy(ROOT / name, folder / name)
    return folder


def _venv(folder: Path) -> Path:
    (folder / "bin").mkdir(parents=True)
    for tool in ("python", "ruff"):
        (folder / "bin" / tool).write_text(RECORDER)
        (folder / "bin" / tool).chmod(0o755)
    deps = hashlib.sha256((ROOT / "setup.cfg").read_bytes() + (ROOT / "pyproject.toml").read_bytes()).hexdigest()[:12]
    (folder / f".installed-{deps}").touch()  # the dependencies are installed
    return folder


def _make(checkout: Path, venv: Path) -> tuple[str, list[str]]:
    log = venv / "calls.log"
    before = log.read_text().splitlines() if log.exists() else []
    result = subprocess.run(["make", "--no-print-directory", "lint", f"VENV={venv}"], cwd=checkout, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout, log.read_text().splitlines()[len(before):]


def test_make_reinstalls_only_for_another_checkout(tmp_path):
    venv = _venv(tmp_path / "venv")
    first, second = _checkout(tmp_path / "clone-a"), _checkout(tmp_path / "clone-b")

    output, calls = _make(first, venv)
    assert calls == ["python -m pip install -q --no-deps --no-build-isolation -e .", "ruff check ."]
    assert f"now runs this checkout ({first})" in output

    output, calls = _make(first, venv)  # nothing changed: no pip, no message
    assert calls == ["ruff check ."]
    assert output.strip().splitlines() == [f"{venv}/bin/ruff check ."]

    _, calls = _make(second, venv)  # the cached venv ran another clone: re-pointed once
    assert calls[0].startswith("python -m pip install") and len(calls) == 2
    _, calls = _make(second, venv)
    assert calls == ["ruff check ."]
    _, calls = _make(first, venv)  # and back
    assert calls[0].startswith("python -m pip install")
