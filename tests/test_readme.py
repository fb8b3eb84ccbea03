"""The README's API tour runs as written: its Python snippets in order in one fresh process, then
its training commands, in an empty folder (with `scripts/` linked in, as in a checkout)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _blocks(language: str) -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    tour = text[text.index("## API tour") : text.index("## Reproducing the paper")]
    return re.findall(rf"```{language}\n(.*?)```", tour, flags=re.S)


def _commands(block: str) -> list[str]:
    return [line for line in block.replace("\\\n", " ").splitlines() if line.strip() and not line.startswith("#")]


@pytest.mark.slow
def test_readme_api_tour_runs_as_written(tmp_path):
    python_blocks = _blocks("python")
    assert len(python_blocks) >= 5
    (tmp_path / "scripts").symlink_to(ROOT / "scripts")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", "\n".join(python_blocks)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "(1, 8, 3, 32, 32)" in result.stdout.replace("torch.Size([", "(").replace("])", ")")
    assert "'map@1': 100.0, 'map@3': 83.33" in result.stdout
    assert (tmp_path / "my-gallery" / "embeddings.npy").exists()

    for command in _commands(_blocks("bash")[-1]):
        arguments = shlex.split(command)
        assert arguments[0] == "python"
        step = subprocess.run([sys.executable, *arguments[1:]], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=600)
        assert step.returncode == 0, f"{command}\n{step.stderr[-4000:]}"
    assert (tmp_path / "evaluation" / "metrics.json").exists()
    assert (tmp_path / "stage2" / "model.safetensors").exists()
