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


def __getattr__(name: str) -> Any:
    if name in _LAZY_EXPORTS:
        module = importlib.import_module(".tfcovr_map.tfcovr_map", __name__)
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_EXPORTS))
