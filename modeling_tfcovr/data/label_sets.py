"""Named label spaces.

`TFCOVR_STAGE1_LABELS` is the 306-way label space of TF-CoVR's stage-1 classifier
(`label2index` in `AIM_Embeddings/src/data/data.py` of UCF-CRCV/TF-CoVR), in its exact order:
259 FineGym gym288 class labels (their ids written as strings; the gym288 classes that TF-CoVR
does not use are absent) followed by 47 FineDiving dive codes. A converted official stage-1
checkpoint and a classifier trained on clips built with this label set share the same `id2label`.
"""

from __future__ import annotations

# Inclusive ranges of the FineGym gym288 class ids that TF-CoVR keeps, in label2index order.
_FINEGYM_ID_RANGES = (
    (0, 23),
    (25, 25),
    (27, 38),
    (40, 49),
    (51, 63),
    (65, 71),
    (73, 73),
    (76, 78),
    (81, 86),
    (88, 95),
    (97, 129),
    (133, 148),
    (150, 156),
    (158, 163),
    (165, 189),
    (191, 198),
    (207, 260),
    (262, 264),
    (266, 287),
)
FINEGYM_LABELS: tuple[str, ...] = tuple(str(i) for first, last in _FINEGYM_ID_RANGES for i in range(first, last + 1))

# FineDiving dive codes, in label2index order (not sorted).
FINEDIVING_LABELS: tuple[str, ...] = (
    "407c",
    "5253b",
    "107b",
    "6245d",
    "207c",
    "5152b",
    "5255b",
    "6243d",
    "109c",
    "626c",
    "307c",
    "207b",
    "5156b",
    "407b",
    "409c",
    "6142d",
    "305c",
    "405b",
    "205b",
    "5235d",
    "612b",
    "103b",
    "403b",
    "101b",
    "5331d",
    "5132d",
    "614b",
    "5231d",
    "5154b",
    "5251b",
    "107c",
    "105b",
    "6241b",
    "5237d",
    "5353b",
    "5337d",
    "5355b",
    "405c",
    "5335d",
    "5172b",
    "636c",
    "205c",
    "626b",
    "401b",
    "109b",
    "303c",
    "5233d",
)

TFCOVR_STAGE1_LABELS: tuple[str, ...] = FINEGYM_LABELS + FINEDIVING_LABELS

LABEL_SETS: dict[str, tuple[str, ...]] = {"tfcovr-306": TFCOVR_STAGE1_LABELS}


def get_label_set(name: str) -> tuple[str, ...]:
    """The labels of the named label set, in index order.

    Raises:
        KeyError: an unknown name (the message lists the known ones).
    """
    try:
        return LABEL_SETS[name]
    except KeyError:
        raise KeyError(f"unknown label set {name!r}; known: {sorted(LABEL_SETS)}") from None


def id2label_of(name: str) -> dict[int, str]:
    """`{index: label}` of the named label set (a model config's `id2label`)."""
    return dict(enumerate(get_label_set(name)))


__all__ = ["FINEDIVING_LABELS", "FINEGYM_LABELS", "LABEL_SETS", "TFCOVR_STAGE1_LABELS", "get_label_set", "id2label_of"]
