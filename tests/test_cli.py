"""The one registry of the commands: `tfcovr --help` and `tfcovr <command> --help`, the console scripts of
setup.cfg, the thin `scripts/*.py` entry points, and the one flag style (dashes, underscores accepted)."""

from __future__ import annotations

import ast
import configparser
import importlib.machinery
import subprocess
import sys
from pathlib import Path

import pytest

from modeling_tfcovr.commands import COMMANDS, command_parser, console_scripts, load_command, main, run_command

ROOT = Path(__file__).resolve().parents[1]


def test_setup_cfg_console_scripts_are_the_registry():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    entries = [line.strip() for line in config["options.entry_points"]["console_scripts"].splitlines() if line.strip()]
    assert entries == console_scripts()
    assert entries[0] == "tfcovr = modeling_tfcovr.commands:main"


def test_every_script_is_a_thin_call_of_its_registered_command():
    scripts = {path.name for path in (ROOT / "scripts").glob("*.py")}
    assert scripts == {command.script_name for command in COMMANDS.values()}
    for name, command in COMMANDS.items():
        tree = ast.parse((ROOT / "scripts" / command.script_name).read_text())
        calls = [
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "run_command"
        ]
        assert [ast.literal_eval(call.args[0]) for call in calls] == [name], command.script_name
        assert not [node for node in tree.body if isinstance(node, ast.FunctionDef | ast.ClassDef)]
        assert callable(load_command(name).main)


def test_no_script_shadows_an_installed_module():
    """`python scripts/<x>.py` puts its folder first on sys.path: no file there may share a module's name."""
    folders = (ROOT / "scripts", ROOT / "scripts" / "bench")
    elsewhere = [entry for entry in sys.path if Path(entry or ".").resolve() not in folders]  # the path without them
    for folder in folders:
        for path in folder.glob("*.py"):
            assert path.stem not in sys.builtin_module_names, path
            assert importlib.machinery.PathFinder.find_spec(path.stem, elsewhere) is None, path


def test_tfcovr_help_lists_every_command_with_its_description(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name, command in COMMANDS.items():
        assert name in out and " ".join(command.help.split()[:3]) in " ".join(out.split())


@pytest.mark.parametrize("name", list(COMMANDS))
def test_tfcovr_command_help(name, capsys):
    assert main([name, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: tfcovr {name} ") and "--help" in out
    assert "_" not in " ".join(
        word for word in out.split() if word.startswith("--") and name not in ("train-classifier", "train-retrieval")
    )


def test_an_alias_runs_its_command(monkeypatch, capsys):
    """The console script `tfcovr-<command>` is `main` too: the command is read from the program's name."""
    monkeypatch.setattr(sys, "argv", ["/venv/bin/tfcovr-build-synthetic", "--help"])
    assert main() == 0
    assert capsys.readouterr().out.startswith("usage: tfcovr-build-synthetic ")


def test_unknown_command_names_the_choices(capsys):
    assert main(["evaluation"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown command 'evaluation'; available: demo, app,") and "evaluate" in err


def test_options_take_dashes_and_underscores():
    parser = command_parser("x")
    parser.add_argument("--output-dir")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("rest", nargs="*")
    assert vars(parser.parse_args(["--output_dir", "a", "--top_k=3"])) == {"output_dir": "a", "top_k": 3, "rest": []}
    assert vars(parser.parse_args(["--output-dir=a", "--", "--top_k"])) == {
        "output_dir": "a",
        "top_k": 5,
        "rest": ["--top_k"],
    }


def test_a_command_takes_an_underscore_option(tmp_path, capsys):
    assert run_command("demo", ["--output_dir", str(tmp_path), "--collect", str(tmp_path / "none")]) == 1
    assert str(tmp_path / "none") in capsys.readouterr().err


def test_the_console_module_runs_a_command():
    result = subprocess.run(
        [sys.executable, "-m", "modeling_tfcovr.commands", "build-synthetic", "--help"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert result.returncode == 0 and result.stdout.startswith("usage: tfcovr build-synthetic"), result.stderr
