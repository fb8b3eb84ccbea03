"""Publish a trained TF-CoVR model folder (weights, processor, code through auto_map, model card)
or the dataset folder to the Hugging Face Hub.

    python scripts/push_to_hub.py runs/demo/tfcovr-synthetic --repo-id ucf/tfcovr-base
    python scripts/push_to_hub.py hub_dataset --repo-id ucf/tf-covr --repo-type dataset
    python scripts/push_to_hub.py runs/demo/tfcovr-synthetic --repo-id ucf/tfcovr-base --dry-run

`--dry-run` assembles and lists exactly what would be uploaded and validates the card, without network access.
`ModelCard.validate` asks the Hub (`/api/validate-yaml`); the dry run runs the same checks offline: the YAML
metadata parses, the license is a Hub license id, the pipeline tag is one the Hub knows, the `model-index` has the
structure the Hub reads (task, dataset, metrics with values), `base_model` / `datasets` are repository ids, and a
dataset card's `configs` name files that exist.
"""

from __future__ import annotations

from ..publishing import plan_upload, upload
from . import command_parser


def main(argv: list[str] | None = None) -> int:
    parser = command_parser(__doc__)
    parser.add_argument("folder")
    parser.add_argument("--repo-id", required=True)
    parser.add_argument("--repo-type", default="model", choices=["model", "dataset"])
    parser.add_argument("--private", action="store_true")
    parser.add_argument("--dry-run", action="store_true", help="list what would be uploaded and stop")
    args = parser.parse_args(argv)
    plan = plan_upload(args.folder, args.repo_id, args.repo_type)
    print(plan.describe())
    print("card: the Hub's metadata checks pass (run offline)")
    if args.dry_run:
        print("dry run: nothing uploaded")
        return 0
    print(upload(plan, private=args.private))
    return 0
