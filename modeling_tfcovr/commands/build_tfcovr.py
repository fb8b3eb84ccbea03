"""Converts the official TF-CoVR annotation CSVs into the parquet splits of `hub_dataset/`.

Example:
    python scripts/build_tfcovr.py --csv-dir annotations --output hub_dataset
    python scripts/build_tfcovr.py --csv-dir annotations --output hub_dataset --skip-invalid

Invalid rows (missing values, unparsable literals, empty modifications) are listed with their row
numbers; by default nothing is written, with --skip-invalid they are skipped and listed in
<output>/build_report.json.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..data.tfcovr_csv import REPORT_FILENAME, build_tfcovr_dataset
from ..errors import TFCoVRError
from . import command_parser, report_error


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(__doc__)
    parser.add_argument("--csv-dir", type=Path, help="directory with the train / val / test CSVs")
    parser.add_argument(
        "--output", type=Path, default=Path("hub_dataset"), help="dataset repository to write data/ into"
    )
    parser.add_argument("--skip-invalid", action="store_true", help="skip invalid rows and list them in the report")
    for split in ("train", "val", "test"):
        parser.add_argument(f"--{split}", type=Path, help=f"explicit path of the {split} CSV")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    explicit = {split: getattr(args, split) for split in ("train", "val", "test") if getattr(args, split) is not None}
    if args.csv_dir is None and len(explicit) < 3:
        parser.error("give --csv-dir, or all of --train, --val and --test")
    try:
        report = build_tfcovr_dataset(args.csv_dir, args.output, skip_invalid=args.skip_invalid, csv_files=explicit)
    except TFCoVRError as error:
        return report_error(error)
    for split, info in report["splits"].items():
        print(f"{split}: {info['triplets_written']} triplets from {info['file']} ({info['rows_skipped']} rows skipped)")
    if report["skipped_rows"]:
        print(f"skipped rows are listed in {args.output / REPORT_FILENAME}")
    return 0
