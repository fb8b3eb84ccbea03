"""The Makefile's targets run pip only when needed: a new venv, changed dependencies, or a venv that runs another
checkout (`.ci/run` passes a cached venv that may come from another clone), and a failed install stops make with
pip's error. Checked with real `make` on a venv whose `python` and `ruff` only record how they were called (or fail
like pip), and with a real venv whose pip cannot reach an index."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")

RECORDER = """#!/bin/sh
echo "$(basename "$0") $*" >> "$(dirname "$0")/../calls.log"
"""
# A `python` whose pip fails, like pip does, on the step whose arguments contain $FAIL_ON.
FAILING_PIP = """#!/bin/sh
echo "$(basename "$0") $*" >> "$(dirname "$0")/../calls.log"
case "$*" in
  *"$FAIL_ON"*) echo "ERROR: No matching distribution found for torch==0.0 (fake pip)" >&2; exit 1 ;;
esac
"""


def _checkout(folder: Path) -> Path:
    folder.mkdir()
    for name in ("Makefile", "setup.cfg", "pyproject.toml", "requirements-torch.txt", ".ci/deps_hash"):
        (folder / name).parent.mkdir(exist_ok=True)
        shutil.copy2(ROOT / name, folder / name)
    return folder


def _deps_hash(checkout: Path = ROOT) -> str:
    return subprocess.run([checkout / ".ci/deps_hash"], capture_output=True, text=True, check=True).stdout.strip()


def _venv(folder: Path, python: str = RECORDER, installed: bool = True) -> Path:
    (folder / "bin").mkdir(parents=True)
    for tool, script in (("python", python), ("ruff", RECORDER)):
        (folder / "bin" / tool).write_text(script)
        (folder / "bin" / tool).chmod(0o755)
    if installed:
        (folder / f".installed-{_deps_hash()}").touch()  # the dependencies are installed
    return folder


def _run_make(checkout: Path, venv: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", "lint", f"VENV={venv}"],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


def _make(checkout: Path, venv: Path) -> tuple[str, list[str]]:
    log = venv / "calls.log"
    before = log.read_text().splitlines() if log.exists() else []
    result = _run_make(checkout, venv)
    assert result.returncode == 0, result.stderr
    return result.stdout, log.read_text().splitlines()[len(before) :]


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


def test_the_makefile_and_ci_share_one_dependency_hash_that_covers_the_torch_pins(tmp_path):
    makefile, ci = (ROOT / "Makefile").read_text(), (ROOT / ".ci/run").read_text()
    assert "DEPS_HASH := $(shell .ci/deps_hash)" in makefile and "deps_hash=$(.ci/deps_hash)" in ci
    assert "cat setup.cfg" not in makefile + ci  # no second recipe for the hash
    checkout = _checkout(tmp_path / "clone")
    assert _deps_hash(checkout) == _deps_hash()
    with open(checkout / "requirements-torch.txt", "a") as handle:
        handle.write("# another pin\n")
    assert _deps_hash(checkout) != _deps_hash()
    (checkout / "requirements-torch.txt").unlink()
    missing = subprocess.run([checkout / ".ci/deps_hash"], capture_output=True, text=True)
    assert missing.returncode == 1 and "requirements-torch.txt is missing" in missing.stderr
    result = _run_make(checkout, _venv(tmp_path / "venv"))
    assert result.returncode != 0 and "printed no dependency hash" in result.stderr


def test_torch_is_pinned_in_one_place():
    pins = [line for line in (ROOT / "requirements-torch.txt").read_text().splitlines() if line and line[0] != "#"]
    assert [pin.split("==")[0] for pin in pins] == ["torch", "torchvision"]
    for name in ("Makefile", ".ci/run", "scripts/check_gpu.sh", "README.md"):
        text = (ROOT / name).read_text()
        assert not any(pin in text for pin in pins), f"{name} repeats a pin of requirements-torch.txt"
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install -q -r requirements-torch.txt" in makefile
    assert "pip install -q -c requirements-torch.txt -e" in makefile  # the package's install cannot move torch
    assert "requirements-torch.txt" in (ROOT / "README.md").read_text()


def test_changed_dependencies_reinstall_everything(tmp_path):
    venv = _venv(tmp_path / "venv", installed=False)
    checkout = _checkout(tmp_path / "clone")
    _, calls = _make(checkout, venv)
    assert calls == [
        "python -m pip install -q --upgrade pip setuptools wheel",
        "python -m pip install -q -r requirements-torch.txt",
        "python -m pip install -q -c requirements-torch.txt -e .[dev]",
        "python -m pip install -q --no-deps --no-build-isolation -e .",
        "ruff check .",
    ]
    assert [path.name for path in venv.glob(".installed-*")] == [f".installed-{_deps_hash()}"]
    _, calls = _make(checkout, venv)
    assert calls == ["ruff check ."]
    with open(checkout / "requirements-torch.txt", "a") as handle:
        handle.write("# another pin\n")
    _, calls = _make(checkout, venv)
    assert calls[1] == "python -m pip install -q -r requirements-torch.txt" and calls[-1] == "ruff check ."
    assert [path.name for path in venv.glob(".installed-*")] == [f".installed-{_deps_hash(checkout)}"]


@pytest.mark.parametrize("fail_on", ["-r requirements-torch.txt", "-e .[dev]", "--no-deps"])
def test_a_failed_install_stops_make_with_pips_error(tmp_path, fail_on):
    venv = _venv(tmp_path / "venv", python=FAILING_PIP, installed=fail_on == "--no-deps")
    checkout = _checkout(tmp_path / "clone")
    result = _run_make(checkout, venv, env={"FAIL_ON": fail_on})
    assert result.returncode != 0
    assert "ERROR: No matching distribution found for torch==0.0 (fake pip)" in result.stderr
    calls = (venv / "calls.log").read_text().splitlines()
    assert fail_on in calls[-1] and "ruff check ." not in calls  # stopped at the failed step
    assert not list(venv.glob(".checkout-*"))  # nothing claims the install worked
    if fail_on != "--no-deps":
        assert not list(venv.glob(".installed-*"))
    else:
        assert "error: pip install -e . exited 1" in result.stderr


def test_a_failed_install_in_a_real_venv_stops_make_with_pips_error(tmp_path):
    checkout = _checkout(tmp_path / "clone")
    venv = tmp_path / "venv"
    # no index and no local wheels: the first pip step fails, as it does offline
    env = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "", "PIP_QUIET": "0"}
    result = _run_make(checkout, venv, env={**env, "PYTHON": sys.executable})
    assert result.returncode != 0
    assert "ERROR:" in result.stderr and "pip install" in result.stdout
    assert (venv / "bin" / "python").exists() and not list(venv.glob(".installed-*"))


def test_format_check_runs_ruffs_formatter_check_and_ci_runs_it(tmp_path):
    venv = _venv(tmp_path / "venv")
    checkout = _checkout(tmp_path / "clone")
    result = subprocess.run(
        ["make", "--no-print-directory", "format-check", f"VENV={venv}"],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert (venv / "calls.log").read_text().splitlines()[-1] == "ruff format --check ."
    ci = (ROOT / ".ci/run").read_text()
    steps = [ci.index(f'make {target} VENV="$venv"') for target in ("lint", "format-check", "test")]
    assert steps == sorted(steps)
