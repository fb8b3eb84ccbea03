"""Untrusted files: nothing the project loads may run code unless the user opts in.

Two scans of `modeling_tfcovr/` and `scripts/` find every call that can execute what it reads. ruff's security rules
(flake8-bandit, enabled in pyproject.toml and run by `make lint`) find unpickling (S301, S302), `eval` / `exec` (S307,
S102), `yaml.load` without a safe loader (S506) and shell commands (S602, S604, S605); the AST scan below finds what
ruff cannot express: `torch.load` without `weights_only=True`, TorchScript, `pickle.Unpickler` subclasses, the pickle
loaders ruff does not know (`_pickle`, `cloudpickle`, `joblib`, `torch.package`), `yaml.unsafe_load` / `full_load`,
`numpy.load` with pickles and `trust_remote_code=True`. Every finding of either (ruff's read with `--ignore-noqa`, so
that a noqa comment does not hide a place from this test) must be in the allow-list below. Every allow-listed place
is then called without its opt-in flag on a file that would run code when unpickled, and must refuse with
`UntrustedFileError` without running it."""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import pickle
import re
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest
import torch

from modeling_tfcovr.convert.loading import load_checkpoint, load_state_dict
from modeling_tfcovr.data.embeddings import convert_pickle_embeddings, load_pickle_embeddings
from modeling_tfcovr.errors import TFCoVRError, UntrustedFileError

from .conftest import load_script

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("modeling_tfcovr", "scripts")
HAS_RUFF = importlib.util.find_spec("ruff") is not None
needs_ruff = pytest.mark.skipif(not HAS_RUFF, reason="needs ruff (pip install -e '.[dev]')")


class Finding(NamedTuple):
    file: str
    """Path relative to the repository root."""
    function: str
    """Qualified name of the enclosing function or class (`<module>` at top level)."""
    kind: str
    """What the AST scan found, or the code of ruff's rule (`S301`)."""
    line: int


# (file, function, kind) -> why it is there and what guards it. Every entry must still be found by a scan, and
# `test_every_allow_listed_place_has_a_guard_test` checks that each has a guard test. A place that ruff finds also
# carries a noqa comment with the rule's code and the reason in the source, so that `ruff check .` passes.
ALLOWED: dict[tuple[str, str, str], str] = {
    (
        "modeling_tfcovr/data/embeddings.py",
        "load_pickle_embeddings",
        "S301",
    ): "the official TF-CoVR embeddings are a pickle stream; reached only with trust_pickle=True (--trust-pickle), "
    "UntrustedFileError before the file is opened otherwise",
    (
        "modeling_tfcovr/convert/loading.py",
        "load_checkpoint",
        "torch.load without weights_only=True",
    ): "official checkpoints pickle Python objects (a scheduler, argparse.Namespace); torch.load(weights_only=False) "
    "runs only after weights_only=True failed and trust_pickle=True, UntrustedFileError otherwise",
    (
        "modeling_tfcovr/convert/loading.py",
        "load_checkpoint",
        "torch.jit.load",
    ): "OpenAI's released CLIP .pt files are TorchScript archives; loaded only with trust_pickle=True",
    (
        "modeling_tfcovr/convert/loading.py",
        "_LenientUnpickler",
        "pickle.Unpickler subclass",
    ): "the unpickler of load_checkpoint's trusted path (placeholders for classes that cannot be imported); used "
    "only through _lenient_pickle_module, whose only caller is that path",
    (
        "modeling_tfcovr/safe_pickle.py",
        "RestrictedUnpickler",
        "pickle.Unpickler subclass",
    ): "the FineDiving annotation pickles: find_class admits no global but four numpy array builders (allow_numpy), "
    "so a __reduce__ payload is refused before anything runs; no opt-in needed",
    (
        "modeling_tfcovr/commands/check_gpu.py",
        "_pipeline_answers",
        "trust_remote_code=True",
    ): "the GPU check loads, through pipeline(...), the model folder it has just trained and saved itself in its own "
    "temporary folder; the code it trusts is the project's own, written there by save_for_pipeline",
    (
        "modeling_tfcovr/demo/main_job.py",
        "_examples",
        "trust_remote_code=True",
    ): "the demo reloads, through pipeline(...), the model folder it has just trained and saved itself, to show the "
    "hub loading path; the code it trusts is the project's own, written there by save_for_pipeline",
}

# Calls that deserialise with pickle (or equivalent) and that ruff's S301 / S302 do not know, by qualified name.
_PICKLE_LOADERS = {
    "_pickle.load",
    "_pickle.loads",
    "_pickle.Unpickler",
    "cPickle.load",
    "cPickle.loads",
    "cloudpickle.load",
    "cloudpickle.loads",
    "joblib.load",
    "torch.package.PackageImporter",
}
# Unpickler classes: subclassing one makes a place that unpickles (ruff flags calls, not class definitions).
_UNPICKLER_BASES = {"pickle.Unpickler", "_pickle.Unpickler", "cPickle.Unpickler", "dill.Unpickler"}
_TORCH_LOADERS = {"torch.load", "torch.serialization.load"}
_TORCHSCRIPT_LOADERS = {"torch.jit.load"}
# yaml.load without a safe loader is ruff's S506; these never take a safe loader and S506 does not know them.
_YAML_UNSAFE = {"yaml.unsafe_load", "yaml.full_load", "yaml.unsafe_load_all", "yaml.full_load_all"}


def _is_true(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


class _Scanner(ast.NodeVisitor):
    """Collects the risky calls of one module that ruff cannot find, resolving `import x as y` and `from x import y`
    aliases."""

    def __init__(self, file: str):
        self.file = file
        self.aliases: dict[str, str] = {}
        self.scope: list[str] = []
        self.findings: list[Finding] = []

    # -- names --------------------------------------------------------------------------------------------------------

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.asname:
                self.aliases[alias.asname] = alias.name
            else:
                top = alias.name.split(".")[0]
                self.aliases[top] = top

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module and not node.level:
            for alias in node.names:
                self.aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"

    def _name(self, node: ast.AST) -> str | None:
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id, node.id)
        if isinstance(node, ast.Attribute):
            base = self._name(node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    # -- scopes -------------------------------------------------------------------------------------------------------

    def _scoped(self, name: str, node: ast.AST) -> None:
        self.scope.append(name)
        self.generic_visit(node)
        self.scope.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._scoped(node.name, node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._scoped("<lambda>", node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for base in node.bases:
            if self._name(base) in _UNPICKLER_BASES:
                self._report(node, "pickle.Unpickler subclass", scope=[*self.scope, node.name])
        self._scoped(node.name, node)

    def _report(self, node: ast.AST, kind: str, scope: list[str] | None = None) -> None:
        function = ".".join(scope if scope is not None else self.scope) or "<module>"
        self.findings.append(Finding(self.file, function, kind, node.lineno))

    # -- the rules ----------------------------------------------------------------------------------------------------

    def visit_Call(self, node: ast.Call) -> None:
        name = self._name(node.func)
        keywords = {keyword.arg: keyword.value for keyword in node.keywords if keyword.arg}
        if name in _PICKLE_LOADERS:
            self._report(node, name.replace("_pickle.", "pickle.").replace("cPickle.", "pickle."))
        elif name in _TORCH_LOADERS and not _is_true(keywords.get("weights_only")):
            self._report(node, "torch.load without weights_only=True")
        elif name in _TORCHSCRIPT_LOADERS:
            self._report(node, "torch.jit.load")
        elif name in _YAML_UNSAFE:
            self._report(node, "yaml.load without a safe loader")
        elif (
            name in {"numpy.load", "np.load"}
            and "allow_pickle" in keywords
            and not (isinstance(keywords["allow_pickle"], ast.Constant) and keywords["allow_pickle"].value is False)
        ):
            self._report(node, "numpy.load with allow_pickle")
        if "trust_remote_code" in keywords and not (
            isinstance(keywords["trust_remote_code"], ast.Constant) and keywords["trust_remote_code"].value is False
        ):
            self._report(node, "trust_remote_code=True")
        self.generic_visit(node)

    def visit_Dict(self, node: ast.Dict) -> None:  # {"trust_remote_code": True} passed on as **kwargs
        for key, value in zip(node.keys, node.values):
            if (
                isinstance(key, ast.Constant)
                and key.value == "trust_remote_code"
                and not (isinstance(value, ast.Constant) and value.value is False)
            ):
                self._report(node, "trust_remote_code=True")
        self.generic_visit(node)


def scan_source(source: str, file: str = "<snippet>") -> list[Finding]:
    scanner = _Scanner(file)
    scanner.visit(ast.parse(source, filename=file))
    return scanner.findings


def scan_project() -> list[Finding]:
    findings = []
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            findings += scan_source(path.read_text(encoding="utf-8"), path.relative_to(ROOT).as_posix())
    return findings


def ruff_security_findings(paths: list[Path], cwd: Path = ROOT, ignore_noqa: bool = True) -> list[dict]:
    """ruff's diagnostics of the security rules (codes S...) on `paths`, with the project's configuration."""
    command = [
        sys.executable,
        "-m",
        "ruff",
        "check",
        "--no-cache",
        "--exit-zero",
        "--output-format",
        "json",
        "--config",
        str(ROOT / "pyproject.toml"),
        *(["--ignore-noqa"] if ignore_noqa else []),
        *map(str, paths),
    ]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120, check=True)
    return [diagnostic for diagnostic in json.loads(result.stdout) if re.fullmatch(r"S\d+", diagnostic["code"] or "")]


def _enclosing_scope(tree: ast.AST, line: int) -> str:
    """Qualified name of the innermost function or class around `line` (`<module>` at top level)."""
    scope: list[str] = []
    nodes = [tree]
    while nodes:
        inner = [
            child
            for node in nodes
            for child in ast.iter_child_nodes(node)
            if getattr(child, "lineno", None) is not None and child.lineno <= line <= child.end_lineno
        ]
        definitions = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
        scope += [node.name for node in inner if isinstance(node, definitions)]
        nodes = inner
    return ".".join(scope) or "<module>"


def ruff_project_findings() -> list[Finding]:
    findings, trees = [], {}
    for diagnostic in ruff_security_findings([ROOT / folder for folder in SCANNED]):
        file = Path(diagnostic["filename"]).resolve().relative_to(ROOT).as_posix()
        if file not in trees:
            trees[file] = ast.parse((ROOT / file).read_text(encoding="utf-8"))
        line = diagnostic["location"]["row"]
        findings.append(Finding(file, _enclosing_scope(trees[file], line), diagnostic["code"], line))
    return findings


# ----------------------------------------------------------------------------------------------------------------------
# The scanners themselves
# ----------------------------------------------------------------------------------------------------------------------

UNSAFE_SNIPPETS = {
    "import _pickle\n_pickle.loads(b)": "pickle.loads",
    "import pickle\nclass U(pickle.Unpickler):\n    pass": "pickle.Unpickler subclass",
    "from pickle import Unpickler as U\nclass Lenient(U):\n    pass": "pickle.Unpickler subclass",
    "import joblib\njoblib.load(p)": "joblib.load",
    "import cloudpickle\ncloudpickle.loads(b)": "cloudpickle.loads",
    "import torch\ntorch.load(p)": "torch.load without weights_only=True",
    "import torch\ntorch.load(p, weights_only=False)": "torch.load without weights_only=True",
    "import torch\ntorch.load(p, weights_only=flag)": "torch.load without weights_only=True",
    "from torch import load\nload(p, map_location='cpu')": "torch.load without weights_only=True",
    "import torch.serialization\ntorch.serialization.load(p)": "torch.load without weights_only=True",
    "import torch\ntorch.jit.load(p)": "torch.jit.load",
    "import yaml\nyaml.unsafe_load(text)": "yaml.load without a safe loader",
    "import yaml\nyaml.full_load(text)": "yaml.load without a safe loader",
    "import numpy as np\nnp.load(p, allow_pickle=True)": "numpy.load with allow_pickle",
    "from transformers import AutoModel\nAutoModel.from_pretrained(p, trust_remote_code=True)": (
        "trust_remote_code=True"
    ),
    "pipeline('x', model=p, **{'trust_remote_code': True})": "trust_remote_code=True",
    "AutoConfig.from_pretrained(p, trust_remote_code=trust)": "trust_remote_code=True",
}

# What ruff's security rules find, and the AST scan leaves to them: snippet -> the code of the rule ruff reports.
RUFF_SNIPPETS = {
    "import pickle\npickle.load(f)": "S301",
    "import pickle as p\ndef f(b):\n    return p.loads(b)": "S301",
    "from pickle import load\nload(f)": "S301",
    "from pickle import loads as read\nread(b)": "S301",
    "import dill\ndill.load(f)": "S301",
    "import shelve\nshelve.open(p)": "S301",
    "import pandas as pd\npd.read_pickle(p)": "S301",
    "import marshal\nmarshal.loads(b)": "S302",
    "eval(text)": "S307",
    "exec(code, {})": "S102",
    "import builtins\nbuiltins.eval(text)": "S307",
    "import yaml\nyaml.load(text)": "S506",
    "import yaml\nyaml.load(text, Loader=yaml.Loader)": "S506",
    "import subprocess\nsubprocess.run(command, shell=True)": "S602",
    "import subprocess\nsubprocess.Popen(command, shell=True)": "S602",
    "import os\nos.system(command)": "S605",
    "import os\nos.popen(command)": "S605",
}

SAFE_SNIPPETS = [
    "import torch\ntorch.load(p, map_location='cpu', weights_only=True)",
    "import yaml\nyaml.safe_load(text)",
    "import yaml\nyaml.load(text, Loader=yaml.SafeLoader)",
    "from yaml import load, CSafeLoader\nload(text, CSafeLoader)",
    "import numpy as np\nnp.load(p, allow_pickle=False, mmap_mode='r')\nnp.load(p)",
    "model.eval()\nself.model.eval()",
    "import ast\nast.literal_eval(text)",
    "import json\njson.loads(text)",
    "AutoModel.from_pretrained(p, trust_remote_code=False)",
    "'''pipeline(\"x\", model=p, trust_remote_code=True)'''  # text in a docstring is not a call",
    "import pickle\npickle.dumps(obj)\npickle.dump(obj, f)",
    "import subprocess\nimport sys\nsubprocess.run([sys.executable, '-c', 'pass'], check=True)",
]


@pytest.mark.parametrize("snippet", list(UNSAFE_SNIPPETS))
def test_scanner_finds_each_kind_of_unsafe_call(snippet):
    assert [finding.kind for finding in scan_source(snippet)] == [UNSAFE_SNIPPETS[snippet]]


@pytest.mark.parametrize("snippet", SAFE_SNIPPETS)
def test_scanner_leaves_safe_calls_alone(snippet):
    assert scan_source(snippet) == []


def test_scanner_names_the_enclosing_function():
    source = "import torch\nclass Reader:\n    def read(self, f):\n        return [torch.load(f) for _ in range(2)]\n"
    assert scan_source(source, "x.py") == [Finding("x.py", "Reader.read", "torch.load without weights_only=True", 4)]


def _write_snippets(folder: Path, snippets: list[str]) -> dict[str, str]:
    """One file per snippet in `folder`; returns file name -> snippet."""
    files = {}
    for index, snippet in enumerate(snippets):
        (folder / f"snippet_{index}.py").write_text(snippet + "\n", encoding="utf-8")
        files[f"snippet_{index}.py"] = snippet
    return files


@needs_ruff
def test_ruff_finds_each_kind_of_unsafe_call_the_scanner_leaves_to_it(tmp_path):
    files = _write_snippets(tmp_path, list(RUFF_SNIPPETS))
    found: dict[str, list[str]] = {snippet: [] for snippet in RUFF_SNIPPETS}
    for diagnostic in ruff_security_findings([tmp_path], cwd=tmp_path):
        found[files[Path(diagnostic["filename"]).name]].append(diagnostic["code"])
    assert found == {snippet: [code] for snippet, code in RUFF_SNIPPETS.items()}
    for snippet in RUFF_SNIPPETS:  # the AST scan does not report them a second time
        assert scan_source(snippet) == []


@needs_ruff
def test_ruff_leaves_safe_calls_alone(tmp_path):
    _write_snippets(tmp_path, SAFE_SNIPPETS)
    assert ruff_security_findings([tmp_path], cwd=tmp_path) == []


@needs_ruff
def test_a_noqa_comment_does_not_hide_a_place_from_the_allow_list(tmp_path):
    source = "import pickle\n\n\ndef read(f):\n    return pickle.load(f)  # noqa: S301  (why)\n"
    (tmp_path / "loader.py").write_text(source)
    assert ruff_security_findings([tmp_path], cwd=tmp_path, ignore_noqa=False) == []  # `ruff check .` passes
    assert [diagnostic["code"] for diagnostic in ruff_security_findings([tmp_path], cwd=tmp_path)] == ["S301"]


def test_enclosing_scope_of_a_line():
    tree = ast.parse("x = 1\nclass A:\n    def f(self):\n        def g():\n            return 2\n        return g\n")
    assert [_enclosing_scope(tree, line) for line in (1, 2, 3, 5, 6)] == ["<module>", "A", "A.f", "A.f.g", "A.f"]


# ----------------------------------------------------------------------------------------------------------------------
# The project
# ----------------------------------------------------------------------------------------------------------------------


@needs_ruff
def test_no_unexpected_code_execution_in_the_package_and_scripts():
    findings = scan_project() + ruff_project_findings()
    unexpected = [f for f in findings if (f.file, f.function, f.kind) not in ALLOWED]
    assert not unexpected, (
        "unexpected ways to run code from a file (add an opt-in guard, or to ALLOWED with the "
        "reason and a guard test):\n" + "\n".join(f"  {f.file}:{f.line} in {f.function}: {f.kind}" for f in unexpected)
    )
    stale = set(ALLOWED) - {(f.file, f.function, f.kind) for f in findings}
    assert not stale, f"allow-list entries that the code no longer has (remove them): {sorted(stale)}"


def test_every_python_file_of_the_package_and_scripts_is_scanned():
    scanned = {path.relative_to(ROOT).as_posix() for folder in SCANNED for path in (ROOT / folder).rglob("*.py")}
    assert "modeling_tfcovr/convert/loading.py" in scanned and "scripts/convert_embeddings.py" in scanned
    for file in scanned:  # every file parses: a syntax error would hide its calls from the scan
        ast.parse((ROOT / file).read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------------------------------------------------
# The allow-listed places are guarded
# ----------------------------------------------------------------------------------------------------------------------


class _RunsCodeWhenUnpickled:
    """Unpickling this object creates the marker file: a stand-in for any code a malicious file could run."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').close()",)


def _evil_pickle_stream(path: Path, marker: Path) -> Path:
    with open(path, "wb") as handle:
        pickle.dump({"clip_a": _RunsCodeWhenUnpickled(marker)}, handle)
    return path


def _evil_checkpoint(path: Path, marker: Path) -> Path:
    torch.save({"state_dict": {"weight": torch.zeros(2, 2)}, "scheduler": _RunsCodeWhenUnpickled(marker)}, path)
    return path


def _torchscript_archive(path: Path) -> Path:
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(path))
    return path


def test_the_restricted_unpickler_refuses_payloads_without_running_it(tmp_path):
    """Guard of ALLOWED[safe_pickle.py, RestrictedUnpickler, pickle.Unpickler subclass]."""
    from modeling_tfcovr.safe_pickle import load_data_pickle

    marker = tmp_path / "EXECUTED"
    evil = _evil_pickle_stream(tmp_path / "annotations.pkl", marker)
    for allow_numpy in (False, True):
        with pytest.raises(UntrustedFileError) as caught:
            load_data_pickle(evil, allow_numpy=allow_numpy)
        assert str(evil) in str(caught.value)
    assert not marker.exists()
    (tmp_path / "plain.pkl").write_bytes(pickle.dumps({("01", 1): [1.5, "407c", None]}))
    assert load_data_pickle(tmp_path / "plain.pkl") == {("01", 1): [1.5, "407c", None]}


def test_pickle_embeddings_are_refused_without_trust_pickle(tmp_path):
    """Guard of ALLOWED[embeddings.py, load_pickle_embeddings, S301]."""
    marker = tmp_path / "EXECUTED"
    evil = _evil_pickle_stream(tmp_path / "embeddings.pkl", marker)
    for call in (
        lambda: load_pickle_embeddings(evil),
        lambda: load_pickle_embeddings(evil, trust_pickle="yes"),
        lambda: convert_pickle_embeddings(evil, tmp_path / "out.parquet"),
    ):
        with pytest.raises(UntrustedFileError, match="--trust-pickle") as caught:
            call()
        assert isinstance(caught.value, TFCoVRError) and str(evil) in str(caught.value)
    assert load_script("convert_embeddings").main([str(evil), "--output", str(tmp_path / "o.parquet")]) == 2
    assert not marker.exists() and not (tmp_path / "out.parquet").exists() and not (tmp_path / "o.parquet").exists()
    # the flag is the only thing in the way: with it, the file's code does run
    with pytest.raises(TFCoVRError):
        load_pickle_embeddings(evil, trust_pickle=True)  # exec returns None: not an embedding
    assert marker.exists()


def test_checkpoints_that_need_unpickling_are_refused_without_trust_pickle(tmp_path):
    """Guard of ALLOWED[loading.py, load_checkpoint, torch.load without weights_only=True] and of the
    _LenientUnpickler it uses."""
    marker = tmp_path / "EXECUTED"
    evil = _evil_checkpoint(tmp_path / "model.ckpt", marker)
    with pytest.raises(
        UntrustedFileError, match="cannot be read safely: it contains the Python object 'exec'.*--trust-pickle"
    ):
        load_checkpoint(evil)
    with pytest.raises(UntrustedFileError):
        load_state_dict(evil)
    for script in ("convert_tfcovr_checkpoint", "convert_aim_checkpoint", "convert_openai_clip"):
        assert load_script(script).main([str(evil), "--output", str(tmp_path / script)]) == 2, script
        assert not (tmp_path / script).exists()
    assert not marker.exists()
    benign = tmp_path / "benign.ckpt"
    torch.save({"state_dict": {"weight": torch.ones(2)}, "args": argparse.Namespace(lr=3e-4)}, benign)
    with pytest.raises(UntrustedFileError, match="argparse.Namespace"):
        load_checkpoint(benign)
    assert load_checkpoint(benign, trust_pickle=True)["args"].lr == 3e-4
    torch.save({"state_dict": {"weight": torch.ones(2)}}, tmp_path / "plain.ckpt")  # tensors only: no flag needed
    assert load_checkpoint(tmp_path / "plain.ckpt")["state_dict"]["weight"].tolist() == [1.0, 1.0]
    load_checkpoint(evil, trust_pickle=True)
    assert marker.exists()  # the opt-in path is the one that unpickles


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
def test_torchscript_archives_are_refused_without_trust_pickle(tmp_path):
    """Guard of ALLOWED[loading.py, load_checkpoint, torch.jit.load]."""
    archive = _torchscript_archive(tmp_path / "clip.pt")
    with pytest.raises(UntrustedFileError, match="TorchScript archive.*runs the code stored inside it"):
        load_checkpoint(archive)
    assert load_script("convert_openai_clip").main([str(archive), "--output", str(tmp_path / "out")]) == 2
    assert sorted(load_checkpoint(archive, trust_pickle=True)) == ["bias", "weight"]


GUARD_TESTS = {
    (
        "modeling_tfcovr/data/embeddings.py",
        "load_pickle_embeddings",
        "S301",
    ): test_pickle_embeddings_are_refused_without_trust_pickle,
    (
        "modeling_tfcovr/convert/loading.py",
        "load_checkpoint",
        "torch.load without weights_only=True",
    ): test_checkpoints_that_need_unpickling_are_refused_without_trust_pickle,
    (
        "modeling_tfcovr/convert/loading.py",
        "load_checkpoint",
        "torch.jit.load",
    ): test_torchscript_archives_are_refused_without_trust_pickle,
    (
        "modeling_tfcovr/convert/loading.py",
        "_LenientUnpickler",
        "pickle.Unpickler subclass",
    ): test_checkpoints_that_need_unpickling_are_refused_without_trust_pickle,
    (
        "modeling_tfcovr/safe_pickle.py",
        "RestrictedUnpickler",
        "pickle.Unpickler subclass",
    ): test_the_restricted_unpickler_refuses_payloads_without_running_it,
}


def test_every_allow_listed_place_has_a_guard_test():
    # places that read a file the user gives need an opt-in flag and a test of it; trust_remote_code=True is allowed
    # only where the code loaded is the project's own (see the reasons in ALLOWED)
    assert set(GUARD_TESTS) == {entry for entry in ALLOWED if entry[2] != "trust_remote_code=True"}
    source = (ROOT / "modeling_tfcovr/convert/loading.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    # the lenient unpickler is reachable only through load_checkpoint, after the trust check
    users = {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
        and any(isinstance(n, ast.Name) and n.id == "_lenient_pickle_module" for n in ast.walk(node))
    }
    assert users == {"load_checkpoint"}
