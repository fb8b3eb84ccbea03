"""The examples in the package's docstrings and in its Markdown files (the metric card) run as written and print
what they show. Every file of `modeling_tfcovr/` with a `>>>` example is collected, so that a module that moves or a
new example is picked up; a module that needs an optional dependency that is not installed is skipped."""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "modeling_tfcovr"
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _files_with_examples(pattern: str) -> list[str]:
    return sorted(
        path.relative_to(ROOT).as_posix()
        for path in PACKAGE.rglob(pattern)
        if re.search(r"^\s*>>> ", path.read_text(encoding="utf-8"), flags=re.M)
    )


def _module_name(file: str) -> str:
    name = file.removesuffix(".py").replace("/", ".")
    return name.removesuffix(".__init__")


def _run(tests: list[doctest.DocTest]) -> None:
    assert sum(len(test.examples) for test in tests) > 0, "no example found"
    report: list[str] = []
    for test in tests:
        runner = doctest.DocTestRunner(optionflags=FLAGS, verbose=False)
        runner.run(test, out=report.append)
    assert not report, "".join(report)


@pytest.mark.parametrize("file", _files_with_examples("*.py"))
def test_docstring_examples(file):
    try:
        module = importlib.import_module(_module_name(file))
    except ModuleNotFoundError as error:  # an optional dependency (gradio, faiss, ...), not a module of ours
        if (error.name or "").startswith("modeling_tfcovr"):
            raise
        pytest.skip(f"{file} needs {error.name}, which is not installed")
    _run([test for test in doctest.DocTestFinder().find(module) if test.examples])


@pytest.mark.parametrize("file", _files_with_examples("*.md"))
def test_markdown_examples(file):
    text = (ROOT / file).read_text(encoding="utf-8")
    text = re.sub(r"^\s*```.*$", "", text, flags=re.M)  # a closing fence ends the expected output, like a blank line
    _run([doctest.DocTestParser().get_doctest(text, {}, file, str(ROOT / file), 0)])


def test_the_examples_are_collected():
    files = _files_with_examples("*.py") + _files_with_examples("*.md")
    assert "modeling_tfcovr/metrics/tfcovr_map/README.md" in files and "modeling_tfcovr/io_utils.py" in files
    assert len(files) >= 6


def test_a_wrong_example_fails():
    parser = doctest.DocTestParser()
    with pytest.raises(AssertionError, match=r"Expected:\s+3\s+Got:\s+2"):
        _run([parser.get_doctest(">>> 1 + 1\n3\n", {}, "wrong", "wrong.py", 0)])
    _run([parser.get_doctest(">>> print('a', 'b')\na ...\n", {}, "ellipsis", "ellipsis.py", 0)])
    assert _module_name("modeling_tfcovr/metrics/__init__.py") == "modeling_tfcovr.metrics"
