"""Retrieval metrics of the project.

`METRIC_PATH` is the folder of the TF-CoVR mAP@K `evaluate` module, to pass to `evaluate.load(METRIC_PATH)`. The
plain functions (the same code `evaluate` runs) are re-exported here and imported on first use, because the module
imports `evaluate`, which takes seconds; reading `METRIC_PATH` alone stays cheap.

Example:

```python
>>> from modeling_tfcovr.metrics import compute_retrieval_metrics
>>> compute_retrieval_metrics([["b", "x", "a"]], [["a", "b"]], k_values=[3])
{'map@3': 83.33333333333333}

```
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

METRIC_PATH: str = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tfcovr_map")
"""Absolute path of the `tfcovr_map` metric folder, loadable offline with `evaluate.load(METRIC_PATH)`."""

_LAZY_EXPORTS = (
    "DEFAULT_K_VALUES",
    "PROTOCOLS",
    "TfcovrMap",
    "average_precision_at_k",
    "average_precision_from_relevance",
    "compute_retrieval_metrics",
    "deduplicate_ranking",
    "map_at_k_from_relevance",
    "official_retrieval_metrics",
    "recall_at_k",
    "relevance_from_indices",
)

__all__ = [
    "DEFAULT_K_VALUES",
    "METRIC_PATH",
    "PROTOCOLS",
    "load_metric",
    "TfcovrMap",
    "average_precision_at_k",
    "average_precision_from_relevance",
    "compute_retrieval_metrics",
    "deduplicate_ranking",
    "map_at_k_from_relevance",
    "official_retrieval_metrics",
    "recall_at_k",
    "relevance_from_indices",
]

if TYPE_CHECKING:
    from .tfcovr_map.tfcovr_map import (
        DEFAULT_K_VALUES,
        PROTOCOLS,
        TfcovrMap,
        average_precision_at_k,
        average_precision_from_relevance,
        compute_retrieval_metrics,
        deduplicate_ranking,
        map_at_k_from_relevance,
        official_retrieval_metrics,
        recall_at_k,
        relevance_from_indices,
    )


def load_metric(path_or_repo_id: str | os.PathLike | None = None, revision: str | None = None,
                repo_type: str = "space", **kwargs: Any) -> Any:
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
        script for script in folder.glob("*.py") if script.name != "__init__.py")
    if len(scripts) != 1 and not (folder / f"{name}.py").is_file():
        raise FileNotFoundError(f"{source!r} (revision {revision or 'main'!r}) holds no single metric script "
                                f"({name}.py or one .py file); found {[s.name for s in scripts]}")
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
