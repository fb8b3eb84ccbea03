"""The main job on the synthetic benchmark and its report: a program built on the library, outside the modelling path.

- `main_job`: build the gym, stage 1, embeddings, stage 2, evaluation with baselines, pipeline, report.
- `pictures`: the report's contact sheets and label descriptions.
- `seed_sweep`: the main job over several seeds and its robustness table.
"""

from .main_job import DemoConfig, minilm_path, run_demo
from .seed_sweep import collect_seeds, format_robustness, run_seeds, seed_row, summarise

__all__ = [
    "DemoConfig",
    "collect_seeds",
    "format_robustness",
    "minilm_path",
    "run_demo",
    "run_seeds",
    "seed_row",
    "summarise",
]
