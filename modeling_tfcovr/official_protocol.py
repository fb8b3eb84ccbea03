"""The official TF-CoVR test protocol (`src/data/finegd_test.py`, `src/test/aim/circo_clip.py` of
UCF-CRCV/TF-CoVR): the gallery, the ranking and the counting whose numbers the paper reports.

- Gallery: one embedding per test row's `target_video`, in row order, duplicates kept. A valid target that
  is never some row's `target_video` is not in the gallery.
- Ranking: cosine similarities of the L2-normalised query and gallery features (one float32 matrix
  product), minus 100 wherever the gallery video is the query's own video (pushed to the bottom, not
  removed), sorted with `np.argsort(similarities)[::-1]`; the first 50 are kept.
- Counting: [`official_retrieval_metrics`] (a duplicated valid target is a hit each time it appears).

The library's own protocol, `"unique"`, ranks a de-duplicated gallery of every valid target and never
returns the query's video. Both are computed by `tfcovr evaluate`, `evaluate_split` and stage-2
validation; only `"official"` numbers are comparable with the paper.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .retrieval_index import SearchResult

OFFICIAL_TOP_K = 50


def official_gallery_ids(target_videos: Sequence[str]) -> list[str]:
    """The official gallery: the `target_video` of every test row, in row order, duplicates kept."""
    return [str(video) for video in target_videos]


def official_rankings(
    query_embeds: np.ndarray | torch.Tensor,
    query_videos: Sequence[str],
    gallery_ids: Sequence[str],
    gallery_embeds: np.ndarray | torch.Tensor,
    top_k: int = OFFICIAL_TOP_K,
) -> SearchResult:
    """Ranks `gallery_ids` for every query as the official test does (see the module docstring).

    Args:
        query_embeds: composed query features `(Q, D)`.
        query_videos: each query's own video id (its similarity is lowered by 100).
        gallery_ids / gallery_embeds: the gallery, `(G, D)`, e.g. from [`official_gallery_ids`].
        top_k: results kept per query (50 in the official code).

    Returns:
        A [`SearchResult`]; scores are the similarities after the push-down.
    """
    queries = F.normalize(torch.as_tensor(np.asarray(query_embeds), dtype=torch.float32), dim=-1)
    gallery = F.normalize(torch.as_tensor(np.asarray(gallery_embeds), dtype=torch.float32), dim=-1)
    if len(query_videos) != queries.shape[0] or len(gallery_ids) != gallery.shape[0]:
        raise ValueError("one query video per query embedding and one id per gallery embedding are needed")
    codes: dict[str, int] = {}
    query_codes = torch.tensor([codes.setdefault(str(v), len(codes)) for v in query_videos], dtype=torch.long)
    gallery_codes = torch.tensor([codes.setdefault(str(v), len(codes)) for v in gallery_ids], dtype=torch.long)
    similarities = queries @ gallery.T
    similarities -= 100 * (query_codes[:, None] == gallery_codes[None, :]).float()
    similarities = similarities.numpy()
    indices = (
        np.stack([np.argsort(row)[::-1][:top_k] for row in similarities])
        if len(similarities)
        else (np.zeros((0, min(top_k, len(gallery_ids))), dtype=np.int64))
    )
    scores = np.take_along_axis(similarities, indices, axis=1).astype(np.float32)
    ids = np.asarray(gallery_ids, dtype=object)
    return SearchResult(
        scores=scores, indices=indices.astype(np.int64), video_ids=[ids[row].tolist() for row in indices]
    )


__all__ = ["OFFICIAL_TOP_K", "official_gallery_ids", "official_rankings"]
