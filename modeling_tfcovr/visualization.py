"""Contact sheets: a query's frames, its modification text, and the top results with the correct
ones marked — the quickest way to see what a retrieval model does."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .video_io import read_frames
from .video_processing_tfcovr import segment_frame_indices

CORRECT, WRONG, BACKGROUND, INK = (40, 170, 60), (200, 40, 40), (255, 255, 255), (20, 20, 20)


def frame_strip(path: str | os.PathLike, num_frames: int = 8, scale: int = 3) -> Image.Image:
    """`num_frames` frames of a video (middle of equal segments) side by side, enlarged `scale` times."""
    frames = read_frames(path, lambda total: segment_frame_indices(total, num_frames, "middle"))
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
) -> Path:
    """Draws one query and its ranked results into a PNG.

    Args:
        results: best first, each `{"path", "video_id", "score", "correct"}`.
    """
    font = ImageFont.load_default()
    query = frame_strip(query_path, num_frames, scale)
    rows = [frame_strip(result["path"], num_frames, scale) for result in results]
    label_height, border = 16, 4
    width = max([query.width, *(row.width for row in rows)]) + 2 * border + 170
    height = (label_height * 3 + query.height + sum(row.height + 2 * border + 2 for row in rows) + 2 * label_height)
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    y = 2
    draw.text((border, y), title or f"query: {Path(query_path).stem}", fill=INK, font=font)
    y += label_height
    draw.text((border, y), f'modification: "{modification}"', fill=INK, font=font)
    y += label_height
    sheet.paste(query, (border, y))
    y += query.height + label_height
    draw.text((border, y - label_height + 2), "top results (green = a valid target):", fill=INK, font=font)
    for rank, (result, row) in enumerate(zip(results, rows), start=1):
        colour = CORRECT if result.get("correct") else WRONG
        draw.rectangle([0, y, row.width + 2 * border - 1, y + row.height + 2 * border - 1], fill=colour)
        sheet.paste(row, (border, y + border))
        mark = "correct" if result.get("correct") else "wrong"
        draw.text((row.width + 3 * border, y + border), f"#{rank} {result['video_id']}", fill=INK, font=font)
        draw.text((row.width + 3 * border, y + border + 12), f"score {result['score']:.3f} ({mark})", fill=colour, font=font)
        y += row.height + 2 * border + 2
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(output_path)
    return output_path


__all__ = ["contact_sheet", "frame_strip"]
