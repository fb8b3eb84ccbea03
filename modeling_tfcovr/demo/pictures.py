"""Contact sheets: a query's frames, its modification text, and the top results with the correct
ones marked — the quickest way to see what a retrieval model does."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..video_processing_tfcovr import decode_video, segment_frame_indices

CORRECT, WRONG, BACKGROUND, INK = (40, 170, 60), (200, 40, 40), (255, 255, 255), (20, 20, 20)


def describe_label(label: str) -> str:
    """`"floor/salto/1.5/cw"` -> `"floor, salto, 1.5 turns, cw"` (the synthetic gym's labels); other labels as
    they are."""
    parts = label.split("/")
    if len(parts) != 4:
        return label
    apparatus, element, rotations, direction = parts
    return f"{apparatus}, {element}, {rotations} turns, {direction}"


def frame_strip(path: str | os.PathLike, num_frames: int = 8, scale: int = 3) -> Image.Image:
    """`num_frames` frames of a video (middle of equal segments) side by side, enlarged `scale` times."""
    frames, _ = decode_video(path, lambda metadata: segment_frame_indices(metadata.total_num_frames, num_frames))
    strip = np.concatenate(list(frames), axis=1)
    image = Image.fromarray(strip)
    return image.resize((image.width * scale, image.height * scale), Image.NEAREST)


def contact_sheet(
    query_path: str | os.PathLike,
    modification: str,
    results: Sequence[dict],
    output_path: str | os.PathLike,
    num_frames: int = 8,
    scale: int = 3,
    title: str = "",
    query_label: str | None = None,
    target_label: str | None = None,
) -> Path:
    """Draws one query and its ranked results into a PNG.

    Args:
        results: best first, each `{"path", "video_id", "score", "correct"}` and optionally `"label"`, written next
            to the correct/wrong mark so that a reader sees why a result is wrong.
        query_label / target_label: the query's label and the label the modification asks for (shown in the header).
            Labels of the synthetic gym (`"floor/salto/1.5/cw"`) are written out as apparatus, element, rotations
            and direction.
    """
    font = ImageFont.load_default()
    query = frame_strip(query_path, num_frames, scale)
    rows = [frame_strip(result["path"], num_frames, scale) for result in results]
    label_height, border, text_width = 16, 4, 260
    header = [title or f"query: {Path(query_path).stem}"]
    if query_label:
        header.append(f"query label: {describe_label(query_label)}")
    header.append(f'modification: "{modification}"')
    if target_label:
        header.append(f"wanted: {describe_label(target_label)}")
    width = max([query.width, *(row.width for row in rows)]) + 2 * border + text_width
    height = (
        label_height * (len(header) + 1)
        + query.height
        + sum(row.height + 2 * border + 2 for row in rows)
        + 2 * label_height
    )
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    y = 2
    for line in header:
        draw.text((border, y), line, fill=INK, font=font)
        y += label_height
    sheet.paste(query, (border, y))
    y += query.height + label_height
    draw.text((border, y - label_height + 2), "top results (green = a valid target):", fill=INK, font=font)
    for rank, (result, row) in enumerate(zip(results, rows), start=1):
        colour = CORRECT if result.get("correct") else WRONG
        draw.rectangle([0, y, row.width + 2 * border - 1, y + row.height + 2 * border - 1], fill=colour)
        sheet.paste(row, (border, y + border))
        mark = "correct" if result.get("correct") else "wrong"
        x = row.width + 3 * border
        draw.text((x, y + border), f"#{rank} {mark.upper()}  score {result['score']:.3f}", fill=colour, font=font)
        if result.get("label"):
            draw.text((x, y + border + 12), describe_label(result["label"]), fill=INK, font=font)
        draw.text((x, y + border + 24), result["video_id"], fill=INK, font=font)
        y += row.height + 2 * border + 2
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(output_path)
    return output_path


__all__ = ["contact_sheet", "describe_label", "frame_strip"]
