"""The main job over several seeds: one full run per seed and a robustness table (mean, min and max of every
metric of the results table and of the stage-1 accuracies)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from .main_job import DemoConfig, run_demo

METHOD_NAMES = {
    "tfcovr": "TF-CoVR-Base",
    "tfcovr_single_frame": "same recipe, one middle frame",
    "text_only": "text only",
    "video_only": "query video only",
    "average": "average of video and text",
}


def seed_row(seed: int, metrics: dict) -> dict:
    """The per-seed summary: every metric of every method, the stage-1 accuracies (0-100), the ratio of
    TF-CoVR-Base's mAP@10 to the best other row, and the job's wall time."""
    results = metrics["results"]
    temporal = results["tfcovr"]["map@10"]
    best_other = max(values["map@10"] for method, values in results.items() if method != "tfcovr")
    return {
        "seed": seed,
        "results": results,
        "stage1_accuracy": {
            name: 100 * values.get("eval_accuracy", float("nan")) for name, values in metrics["stage1"].items()
        },
        "best_other_map@10": best_other,
        "ratio_to_best_other": temporal / max(best_other, 1e-9),
        "seconds": metrics["timings_seconds"]["total"],
    }


def summarise(rows: Sequence[dict]) -> dict:
    """Mean, min and max over seeds of every metric (`results[method][metric]`), of the stage-1 accuracies,
    of the ratio to the best other row and of the wall time."""

    def stats(values: list[float]) -> dict:
        return {"mean": sum(values) / len(values), "min": min(values), "max": max(values)}

    first = rows[0]
    return {
        "seeds": [row["seed"] for row in rows],
        "results": {
            method: {metric: stats([row["results"][method][metric] for row in rows]) for metric in metrics}
            for method, metrics in first["results"].items()
        },
        "stage1_accuracy": {
            name: stats([row["stage1_accuracy"][name] for row in rows]) for name in first["stage1_accuracy"]
        },
        "ratio_to_best_other": stats([row["ratio_to_best_other"] for row in rows]),
        "seconds": stats([row["seconds"] for row in rows]),
    }


def format_robustness(rows: Sequence[dict], summary: dict) -> str:
    """Markdown: one line per seed, then mean / min / max of every metric and of stage-1 accuracy."""
    seeds = ", ".join(str(s) for s in summary["seeds"])
    lines = [
        f"# TF-CoVR main job over seeds {seeds}",
        "",
        "## Per seed (test split, 0-100)",
        "",
        "| seed | TF-CoVR-Base mAP@10 | single-frame mAP@10 | best other row mAP@10 | ratio | "
        "stage-1 accuracy (temporal / single frame) | seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        accuracy = row["stage1_accuracy"]
        lines.append(
            f"| {row['seed']} | {row['results']['tfcovr']['map@10']:.2f} | "
            f"{row['results']['tfcovr_single_frame']['map@10']:.2f} | {row['best_other_map@10']:.2f} | "
            f"{row['ratio_to_best_other']:.1f}x | {accuracy.get('temporal', float('nan')):.1f} / "
            f"{accuracy.get('single_frame', float('nan')):.1f} | {row['seconds']:.0f} |"
        )
    metric_names = list(next(iter(summary["results"].values())))
    lines += [
        "",
        f"## Mean [min, max] over {len(rows)} seeds (test split, 0-100)",
        "",
        "| method | " + " | ".join(metric_names) + " |",
        "|---|" + "---|" * len(metric_names),
    ]
    for method, metrics in summary["results"].items():
        cells = [f"{m['mean']:.2f} [{m['min']:.2f}, {m['max']:.2f}]" for m in metrics.values()]
        lines.append(f"| {METHOD_NAMES.get(method, method)} | " + " | ".join(cells) + " |")
    lines += ["", "| stage 1 (validation accuracy, %) | mean | min | max |", "|---|---|---|---|"]
    for name, values in summary["stage1_accuracy"].items():
        lines.append(f"| {name} | {values['mean']:.1f} | {values['min']:.1f} | {values['max']:.1f} |")
    ratio, seconds = summary["ratio_to_best_other"], summary["seconds"]
    lines += [
        "",
        f"TF-CoVR-Base mAP@10 / best other row: mean {ratio['mean']:.1f}x, worst seed {ratio['min']:.1f}x. "
        f"Wall time per seed: mean {seconds['mean']:.0f} s, max {seconds['max']:.0f} s.",
        "",
    ]
    return "\n".join(lines)


def run_seeds(output_dir: str | Path, config: DemoConfig, seeds: Sequence[int]) -> dict:
    """Runs the main job once per seed into `output_dir/seed-<seed>` and writes `output_dir/robustness.md` and
    `robustness.json` (rewritten after every seed, so a stopped sweep keeps what it measured)."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for number, seed in enumerate(seeds, 1):
        print(f"\n##### seed {seed} ({number}/{len(seeds)})", flush=True)
        started = time.perf_counter()
        metrics = run_demo(output_dir / f"seed-{seed}", replace(config, seed=seed))
        rows.append(seed_row(seed, metrics))
        print(f"##### seed {seed}: {time.perf_counter() - started:.0f}s", flush=True)
        summary = summarise(rows)
        _write_atomic(output_dir / "robustness.json", json.dumps({"rows": rows, "summary": summary}, indent=2))
        _write_atomic(output_dir / "robustness.md", format_robustness(rows, summary))
    print("\n" + (output_dir / "robustness.md").read_text(encoding="utf-8"), flush=True)
    return {"rows": rows, "summary": summary}


def collect_seeds(run_dirs: Sequence[str | Path], output_dir: str | Path) -> dict:
    """The robustness table of finished seed runs (`<run dir>/seed-<seed>/report/metrics.json`, e.g. of sweeps run
    side by side), written to `output_dir/robustness.md` and `.json`."""
    found = sorted(
        (int(path.parent.parent.name.removeprefix("seed-")), path)
        for folder in run_dirs
        for path in Path(folder).glob("seed-*/report/metrics.json")
    )
    if not found:
        raise FileNotFoundError(f"no seed-*/report/metrics.json under {', '.join(map(str, run_dirs))}")
    rows = [seed_row(seed, json.loads(path.read_text(encoding="utf-8"))) for seed, path in found]
    summary = summarise(rows)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    _write_atomic(output_dir / "robustness.json", json.dumps({"rows": rows, "summary": summary}, indent=2))
    _write_atomic(output_dir / "robustness.md", format_robustness(rows, summary))
    print((output_dir / "robustness.md").read_text(encoding="utf-8"), flush=True)
    return {"rows": rows, "summary": summary}


def _write_atomic(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)


__all__ = ["run_seeds", "collect_seeds", "seed_row", "summarise", "format_robustness"]
