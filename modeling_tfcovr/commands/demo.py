"""The main job: TF-CoVR end to end on the synthetic benchmark (build, stage 1, embeddings, stage 2,
evaluation with baselines, pipeline, report). Run it through `make demo`, which sets up the
environment first.

    python scripts/demo.py --seed 0 --output-dir runs/demo

Several seeds, each a full job in <output-dir>/seed-<seed>, and a robustness table (mean, min, max of every
metric and of stage-1 accuracy) in <output-dir>/robustness.md:

    python scripts/demo.py --seeds 0 1 2 3 4 --output-dir runs/seeds

`--collect RUN_DIR...` writes the table of the finished seeds of such folders (e.g. sweeps run side by side).
"""

from __future__ import annotations

from ..demo import DemoConfig, run_demo
from . import command_parser

QUICK = dict(
    stage1_epochs=1,
    stage2_epochs=1,
    num_frames=4,
    num_examples=2,
    stage2_config_overrides=dict(combiner_projection_dim=32, combiner_hidden_dim=32, combiner_dropout=0.1),
    config_overrides=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2),
    synthetic=dict(
        train_clips_per_label=2, val_clips_per_label=2, test_clips_per_label=2, num_frames=8, rotations=(0.5, 1.0)
    ),
)


def main(argv: list[str] | None = None) -> dict:
    parser = command_parser(__doc__)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, nargs="+", help="run the job once per seed and write a robustness table")
    parser.add_argument(
        "--collect",
        nargs="+",
        metavar="RUN_DIR",
        help="only write the robustness table of the finished seeds of these --seeds output folders",
    )
    parser.add_argument("--output-dir", default="runs/demo")
    parser.add_argument("--stage1-epochs", type=float, help="override the stage-1 epochs")
    parser.add_argument("--stage2-epochs", type=float, help="override the stage-2 epochs")
    parser.add_argument("--num-frames", type=int, help="frames per clip of the temporal encoder")
    parser.add_argument("--text-model", help="a transformers text encoder folder (default: the bundled MiniLM)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test (results are meaningless)")
    args = parser.parse_args(argv)

    options = dict(QUICK) if args.quick else {}
    options["seed"] = args.seed
    for name in ("stage1_epochs", "stage2_epochs", "num_frames", "text_model"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    if args.collect:
        from ..demo import collect_seeds

        return collect_seeds(args.collect, args.output_dir)
    if args.seeds:
        from ..demo import run_seeds

        return run_seeds(args.output_dir, DemoConfig(**options), args.seeds)
    return run_demo(args.output_dir, DemoConfig(**options))
