"""Retrieval metrics of the project.

`METRIC_PATH` is the folder of the TF-CoVR mAP@K `evaluate` module, to pass to `evaluate.load(METRIC_PATH)`. The
plain functions (the same code `evaluate` runs) are re-exported here and imported on first use, because the module
imports `evaluate`, which takes seconds; reading `METRIC_PATH` alone stays cheap. The names re-exported are the
script's `__all__`: the script stays self-contained (`evaluate.load` copies it alone), so it is the one list.

Example:

```python
>>> from modeling_tfcovr.metrics import compute_retrieval_metrics
>>> compute_retrieval_metrics([["b", "x", "a"]], [["a", "b"]], k_values=[3])
{'map@3': 83.33333333333333}

```
"""

from __future__ import annotations

import ast
import importlib
import os
from typing import TYPE_CHECKING, Any

METRIC_PATH: str = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tfcovr_map")
"""Absolute path of the `tfcovr_map` metric folder, loadable offline with `evaluate.load(METRIC_PATH)`."""


def _public_names(script: str) -> tuple[str, ...]:
    """The `__all__` of a Python file, read without importing it."""
    with open(script, encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), filename=script)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(target, "id", None) == "__all__" for target in node.targets):
            return tuple(ast.literal_eval(node.value))
    raise ImportError(f"{script} defines no __all__")


# The metric script's public names, imported from it on first use.
_LAZY_EXPORTS = _public_names(os.path.join(METRIC_PATH, "tfcovr_map.py"))

__all__ = ["METRIC_PATH", "load_metric", *_LAZY_EXPORTS]

if TYPE_CHECKING:
    from .tfcovr_map.tfcovr_map import *  # noqa: F403


def load_metric(
    path_or_repo_id: str | os.PathLike | None = None,
    revision: str | None = None,
    repo_type: str = "space",
    **kwargs: Any,
) -> Any:
    """`evaluate.load` of the TF-CoVR metric module: the bundled one (`METRIC_PATH`, by default), a local folder or
    script, or a Hub repository (a Space, as `evaluate` publishes metrics) at `revision`, fetched with
    `snapshot_download` (hence the Hub cache, usable offline with `HF_HUB_OFFLINE=1` once fetched).

    Unlike `evaluate.load("org/name")`, whose own downloader keeps no revision in its offline cache, the revision
    loaded offline is exactly the one asked for.
    """
    import evaluate

    from ..hub import is_local, resolve_folder

    source = METRIC_PATH if path_or_repo_id is None else os.fspath(path_or_repo_id)
    if is_local(source):
        return evaluate.load(source, **kwargs)
    folder = resolve_folder(source, revision=revision, repo_type=repo_type)
    name = source.split("/")[-1]
    scripts = [folder / f"{name}.py", folder / f"{name.replace('-', '_')}.py"]
    scripts = [script for script in scripts if script.is_file()] or sorted(
        script for script in folder.glob("*.py") if script.name != "__init__.py"
    )
    if len(scripts) != 1 and not (folder / f"{name}.py").is_file():
        raise FileNotFoundError(
            f"{source!r} (revision {revision or 'main'!r}) holds no single metric script "
            f"({name}.py or one .py file); found {[s.name for s in scripts]}"
        )
    return evaluate.load(str(scripts[0]), **kwargs)


def __getattr__(name: str) -> Any:
    if name in _LAZY_EXPORTS:
        module = importlib.import_module(".tfcovr_map.tfcovr_map", __name__)
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_EXPORTS))
