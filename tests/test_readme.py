"""The README's API tour runs as written: its Python snippets in order in one fresh process, then
its training commands, in an empty folder (with `scripts/` linked in, as in a checkout).

Where a snippet shows what it prints, it does so with a `# prints: <output>` comment at the end of the statement's
last line or on the line after it; `...` in the output stands for any text (doctest's ELLIPSIS), and runs of white
space compare equal. Every `print(...)` of the tour shows its output that way, and the test compares each with what
the statement prints."""

from __future__ import annotations

import ast
import doctest
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRINTS = re.compile(r"#\s*prints:\s*(.*?)\s*$")
MARK = "\x1eREADME-OUTPUT"  # brackets each checked statement's output in the snippets' stdout


def _blocks(language: str) -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    tour = text[text.index("## API tour") : text.index("## Reproducing the paper")]
    return re.findall(rf"```{language}\n(.*?)```", tour, flags=re.S)


def _commands(block: str) -> list[str]:
    return [line for line in block.replace("\\\n", " ").splitlines() if line.strip() and not line.startswith("#")]


class Shown(NamedTuple):
    """A top-level statement of a snippet and the output the README shows for it (None: it shows none)."""

    source: str
    expected: str | None
    prints: bool
    """Whether the statement calls print()."""


def shown_outputs(block: str) -> list[Shown]:
    """The top-level statements of a Python snippet with the `# prints:` output shown for each."""
    lines = block.splitlines()
    statements = []
    for node in ast.parse(block).body:
        source = "\n".join(lines[node.lineno - 1 : node.end_lineno])
        expected = None
        for line in lines[node.end_lineno - 1 : node.end_lineno + 1]:  # its last line, or the comment after it
            match = PRINTS.search(line)
            if match and (line is lines[node.end_lineno - 1] or line.lstrip().startswith("#")):
                expected = match.group(1)
                break
        calls_print = any(
            isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "print" for n in ast.walk(node)
        )
        statements.append(Shown(source, expected, calls_print))
    return statements


def instrumented(blocks: list[str]) -> tuple[str, list[str]]:
    """The snippets joined into one program, each statement that shows its output bracketed by marker lines, and the
    outputs shown, in order."""
    program, expected = [], []
    for block in blocks:
        for statement in shown_outputs(block):
            if statement.expected is None:
                program.append(statement.source)
                continue
            program += [f"print({MARK!r}, flush=True)", statement.source, f"print({MARK!r}, flush=True)"]
            expected.append(statement.expected)
    return "\n".join(program) + "\n", expected


def printed_outputs(stdout: str) -> list[str]:
    parts = stdout.split(MARK + "\n")
    return [part.strip() for part in parts[1::2]]


def output_matches(expected: str, printed: str) -> bool:
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    return doctest.OutputChecker().check_output(expected + "\n", printed + "\n", flags)


def test_every_print_of_the_tour_shows_its_output():
    statements = [statement for block in _blocks("python") for statement in shown_outputs(block)]
    assert sum(statement.prints for statement in statements) >= 4
    missing = [statement.source for statement in statements if statement.prints and statement.expected is None]
    assert not missing, "print() without a `# prints: <output>` comment:\n" + "\n".join(missing)
    assert "# prints: {'map@1': 100.0, 'map@3': 83.33...}" in _blocks("python")[-1]


def test_the_convention_for_shown_output():
    block = "x = 1\nprint(x)  # prints: 1\nprint(\n    [x, 2],\n)\n# prints: [1, ...]\nprint('a')\ny = 2  # a comment\n"
    assert shown_outputs(block) == [
        Shown("x = 1", None, False),
        Shown("print(x)  # prints: 1", "1", True),
        Shown("print(\n    [x, 2],\n)", "[1, ...]", True),
        Shown("print('a')", None, True),
        Shown("y = 2  # a comment", None, False),
    ]
    program, expected = instrumented([block])
    assert expected == ["1", "[1, ...]"]
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    assert printed_outputs(result.stdout) == ["1", "[1, 2]"]
    assert output_matches("[1, ...]", "[1, 2]") and output_matches("{'a':  1}", "{'a': 1}")
    assert not output_matches("{'map@1': 100.0, ...}", "{'map@1': 50.0, 'map@3': 27.7}")


ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def _run_python_snippets(folder: Path) -> subprocess.CompletedProcess:
    """Runs the tour's Python snippets in order in one process in `folder` and checks what each statement that shows
    its output prints."""
    python_blocks = _blocks("python")
    assert len(python_blocks) >= 5
    (folder / "scripts").symlink_to(ROOT / "scripts")
    program, expected = instrumented(python_blocks)
    result = subprocess.run(
        [sys.executable, "-c", program], cwd=folder, env=ENV, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-4000:]
    printed = printed_outputs(result.stdout)
    assert len(printed) == len(expected)
    mismatched = [
        f"README shows: {shown}\n     printed: {out}"
        for shown, out in zip(expected, printed)
        if not output_matches(shown, out)
    ]
    assert not mismatched, "\n".join(mismatched)
    return result


def test_readme_snippets_print_what_the_readme_shows(tmp_path):
    _run_python_snippets(tmp_path)


@pytest.mark.slow
def test_readme_api_tour_runs_as_written(tmp_path):
    env = ENV
    result = _run_python_snippets(tmp_path)
    assert "(1, 8, 3, 32, 32)" in result.stdout.replace("torch.Size([", "(").replace("])", ")")
    assert "'map@1': 100.0, 'map@3': 83.33" in result.stdout
    assert (tmp_path / "my-gallery" / "embeddings.npy").exists()

    for command in _commands(_blocks("bash")[-1]):
        arguments = shlex.split(command)
        assert arguments[0] == "python"
        step = subprocess.run(
            [sys.executable, *arguments[1:]], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
        )
        assert step.returncode == 0, f"{command}\n{step.stderr[-4000:]}"
    assert (tmp_path / "evaluation" / "metrics.json").exists()
    assert (tmp_path / "stage2" / "model.safetensors").exists()
