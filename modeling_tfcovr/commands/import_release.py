"""Imports the TF-CoVR release folder as downloaded from the Hugging Face dataset repo `ucf-crcv/TF-CoVR`.

Example:
    python scripts/import_release.py TF-CoVR --output tfcovr-data --dim 768
    python scripts/import_release.py TF-CoVR --output tfcovr-data --embeddings pickle --trust-pickle

The folder has the official layout: annotations/{train,val,test}_finegd.csv, and the AIM embeddings
as one tensor per video in Embeddings/AIM/<video id>.pth (read with torch.load(weights_only=True),
no trust needed) and/or as the pickle stream embedding_files/aim_embeddings_12f_all_files.pkl
(read only with --trust-pickle: unpickling can execute code hidden in the file). --embeddings auto
uses the .pth folder when it is there.

Writes <output>/triplets/ (the triplet dataset: data/{train,val,test}.parquet, a README card and
build_report.json), <output>/embeddings.parquet and <output>/import_report.json, which lists the
video ids the CSVs name without an embedding, the embeddings no CSV names, and the embedding files
that could not be used (with the reason; the others are still written).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..data.release import EMBEDDING_FORMS, REPORT_FILENAME, import_release
from ..errors import TFCoVRError
from . import command_parser, report_error


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(__doc__)
    parser.add_argument("release", type=Path, help="the downloaded release folder (official layout)")
    parser.add_argument(
        "--output", type=Path, required=True, help="folder to write triplets/ and embeddings.parquet to"
    )
    parser.add_argument(
        "--embeddings",
        choices=EMBEDDING_FORMS,
        default="auto",
        help="which embedding form to read; auto: the .pth folder if present (no trust needed), else the pickle stream",
    )
    parser.add_argument("--trust-pickle", action="store_true", help="I trust the pickle stream: allow unpickling it")
    parser.add_argument("--dim", type=int, default=None, help="expected embedding dimension (768 for the release)")
    parser.add_argument("--skip-invalid", action="store_true", help="skip invalid CSV rows and list them in the report")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        report = import_release(
            args.release,
            args.output,
            embeddings=args.embeddings,
            trust_pickle=args.trust_pickle,
            skip_invalid=args.skip_invalid,
            expected_dim=args.dim,
        )
    except TFCoVRError as error:
        return report_error(error)
    print(format_summary(report))
    print(f"report: {args.output / REPORT_FILENAME}")
    return 0


def format_summary(report: dict) -> str:
    """The console summary of an import report."""
    triplets, embeddings = report["triplets"], report["embeddings"]
    splits = ", ".join(f"{split} {count}" for split, count in triplets["splits"].items())
    lines = [
        f"triplets: {splits} -> {triplets['output']} ({triplets['rows_skipped']} invalid rows skipped)",
        f"embeddings: {embeddings['num_written']} of dimension {embeddings['dim']} -> {embeddings['output']}",
        f"  read from {embeddings['reason']}",
    ]
    for key, text in (
        ("missing_embeddings", "video id(s) named in the CSVs have no embedding"),
        ("unused_embeddings", "embedding(s) are named by no CSV"),
    ):
        entry = report[key]
        example = f" (e.g. {', '.join(entry['ids'][:3])})" if entry["ids"] else ""
        lines.append(f"{entry['count']} {text}{example}")
    for split, counts in report["missing_embeddings"]["by_split"].items():
        if counts["ids_missing"]:
            lines.append(
                f"  {split}: {counts['ids_missing']} of {counts['ids_named']} ids missing; of {counts['rows']} rows, "
                f"{counts['rows_missing_query']} lack the query, {counts['rows_missing_target_video']} the target"
            )
    failures = report["failures"]
    lines.append(f"{len(failures)} embedding(s) could not be used" + (":" if failures else ""))
    lines += [f"  {failure['file']}: {failure['reason']}" for failure in failures[:10]]
    if len(failures) > 10:
        lines.append(f"  ... and {len(failures) - 10} more")
    return "\n".join(lines)
