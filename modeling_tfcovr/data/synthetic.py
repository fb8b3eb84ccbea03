"""The synthetic gym: a small, procedurally rendered, temporally fine-grained CoVR benchmark.

A bar-shaped body with a yellow head performs an *element* on an *apparatus*:

- apparatus (`floor`, `beam`, `vault`, `water`): the background layout, visible in every frame;
- element: `salto` (the body travels along an arc across the frame while rotating) or `turn`
  (it rotates in place);
- rotations: how many full turns the body makes, in half-turn steps (`0.5`, `1.0`, ...);
- direction: `cw` or `ccw`, clockwise or counter-clockwise as seen on screen.

A label is written `"<apparatus>/<element>/<rotations:.1f>/<direction>"`, e.g. `"floor/salto/2.0/cw"`.

Every clip draws its nuisances from a generator seeded by `(seed, split, clip index)`: body colour,
length and thickness, start angle, position, travel direction, speed profile, background tint, pixel
noise and idle frames before and after the action. The start angle is uniform on the circle, so a
single frame has the same distribution for every rotation count and direction; and the ccw clips are
distributed exactly like the time-reversed cw clips (`reverse_clip_params`), so no order-less pooling
of frames can tell the direction either.

Triplets follow TF-CoVR: a query clip, a modification text and a target label that differs from the
query's in one or two attributes; every clip of the target label in the split is a valid target.
`build_synthetic_benchmark` writes videos, triplet and clip tables, `labels.json`, `stats.json` and a
dataset card that `datasets.load_dataset` reads offline.
"""

from __future__ import annotations

import colorsys
import itertools
import json
import logging
import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ..errors import DataFormatError
from ..model_card import CITATION
from ..video_io import write_mp4
from .tfcovr_csv import SPLITS, TRIPLET_SCHEMA, triplets_to_table, write_files_atomically

logger = logging.getLogger(__name__)

ATTRIBUTES = ("apparatus", "element", "rotations", "direction")
ELEMENTS = ("salto", "turn")
DIRECTIONS = ("cw", "ccw")
SOURCE = "synthetic"
HEAD_COLOR = (255, 225, 0)
SPLIT_CODES = {"train": 0, "val": 1, "test": 2}

CLIP_SCHEMA = pa.schema(
    [
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("video", pa.string(), nullable=False),
        pa.field("label", pa.string(), nullable=False),
        pa.field("label_id", pa.int64(), nullable=False),
        pa.field("apparatus", pa.string(), nullable=False),
        pa.field("element", pa.string(), nullable=False),
        pa.field("rotations", pa.float64(), nullable=False),
        pa.field("direction", pa.string(), nullable=False),
        pa.field("action_start", pa.int64(), nullable=False),
        pa.field("action_end", pa.int64(), nullable=False),
    ]
)
"""Arrow schema of the clip tables (`clips/<split>.parquet`) used for stage-1 classification.
`video` is the path relative to the dataset directory; the action covers frames
`action_start <= t < action_end`."""


# --------------------------------------------------------------------------------------------------
# Configuration and label space
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApparatusStyle:
    """How an apparatus is drawn: a background colour and rectangles in [0, 1] frame coordinates."""

    background: tuple[int, int, int]
    rects: tuple[tuple[float, float, float, float, tuple[int, int, int]], ...]
    """(x0, y0, x1, y1, colour) rectangles drawn over the background, in order."""
    ground: float
    """Height (0 = top, 1 = bottom) of the surface the body performs above."""
    phrase: str
    """How modification texts name the apparatus ("on the beam")."""


APPARATUS_STYLES: dict[str, ApparatusStyle] = {
    # a flat bright mat along the bottom
    "floor": ApparatusStyle((25, 35, 85), ((0.0, 0.84, 1.0, 1.0, (225, 135, 60)),), 0.84, "on the floor"),
    # a thin light bar across the middle on two legs
    "beam": ApparatusStyle(
        (70, 30, 70),
        (
            (0.18, 0.74, 0.24, 1.0, (150, 150, 160)),
            (0.76, 0.74, 0.82, 1.0, (150, 150, 160)),
            (0.0, 0.74, 1.0, 0.81, (235, 235, 235)),
        ),
        0.74,
        "on the beam",
    ),
    # a vaulting table: a short white top on a central stem
    "vault": ApparatusStyle(
        (20, 70, 40),
        ((0.45, 0.78, 0.55, 1.0, (150, 150, 140)), (0.33, 0.72, 0.67, 0.8, (240, 240, 220))),
        0.72,
        "on the vault",
    ),
    # a pool filling the bottom and a diving board at the upper left
    "water": ApparatusStyle(
        (15, 20, 40),
        ((0.0, 0.8, 1.0, 1.0, (40, 160, 225)), (0.0, 0.3, 0.28, 0.35, (235, 235, 235))),
        0.8,
        "over the water",
    ),
}

APPARATUS_LAYOUTS = {
    "floor": "a bright mat along the bottom",
    "beam": "a thin light bar on two legs",
    "vault": "a table on a stem",
    "water": "a pool and a diving board",
}
ELEMENT_PHRASES = {"salto": "salto", "turn": "turn in place"}
DIRECTION_PHRASES = {"cw": "clockwise", "ccw": "counterclockwise"}


@dataclass(frozen=True)
class SyntheticConfig:
    """Options of the synthetic gym. The defaults are sized for training in minutes on 2 CPU cores."""

    size: int = 32
    """Frame height and width in pixels (even)."""
    num_frames: int = 16
    fps: int = 8
    apparatus: tuple[str, ...] = ("floor", "beam", "vault")
    elements: tuple[str, ...] = ELEMENTS
    rotations: tuple[float, ...] = (0.5, 1.0, 1.5)
    """Rotation counts in turns; multiples of 0.5 up to 10."""
    directions: tuple[str, ...] = DIRECTIONS
    train_clips_per_label: int = 32
    val_clips_per_label: int = 4
    test_clips_per_label: int = 4
    train_triplets_per_query: int = 4
    val_triplets_per_query: int = 2
    test_triplets_per_query: int = 2
    two_change_probability: float = 0.4
    """Probability that a triplet's target differs from its query in two attributes instead of one."""
    idle_fraction: tuple[float, float] = (0.05, 0.15)
    """Range of the fraction of frames without action (split randomly before / after it)."""
    ease_exponent: tuple[float, float] = (1.0, 1.25)
    """Range of the speed-profile exponent (1 = constant speed; larger = slower start and end)."""
    noise_std: tuple[float, float] = (2.0, 6.0)
    """Range of the per-pixel Gaussian noise standard deviation (0-255 scale)."""
    body_scale: float = 1.3
    """Size of the body (length, thickness and head) relative to the base size; saltos travel less when
    a large body would leave the frame."""
    crf: int = 18

    def __post_init__(self) -> None:
        # normalise sequences given as lists (e.g. from a CLI or JSON) to tuples
        for name in ("apparatus", "elements", "rotations", "directions", "idle_fraction", "ease_exponent", "noise_std"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "rotations", tuple(float(r) for r in self.rotations))
        problems = list(self._problems())
        if problems:
            raise ValueError("invalid SyntheticConfig: " + "; ".join(problems))

    def _problems(self):
        if self.size < 16 or self.size % 2:
            yield f"size must be an even number >= 16, got {self.size}"
        if self.num_frames < 4:
            yield f"num_frames must be >= 4, got {self.num_frames}"
        if self.fps < 1:
            yield f"fps must be >= 1, got {self.fps}"
        for name, allowed in (("apparatus", APPARATUS_STYLES), ("elements", ELEMENTS), ("directions", DIRECTIONS)):
            values = getattr(self, name)
            if not values or len(set(values)) != len(values) or any(v not in allowed for v in values):
                yield f"{name} must be distinct values among {', '.join(allowed)}, got {values}"
        if not self.rotations or len(set(self.rotations)) != len(self.rotations):
            yield f"rotations must be distinct, got {self.rotations}"
        for r in self.rotations:
            if not (0 < r <= 10 and float(r * 2).is_integer()):
                yield f"rotations must be multiples of 0.5 in (0, 10], got {r}"
        if len(self.apparatus) * len(self.elements) * len(self.rotations) * len(self.directions) < 2:
            yield "the label space needs at least two labels to form triplets"
        for split in SPLITS:
            if self.clips_per_label(split) < 1:
                yield f"{split}_clips_per_label must be >= 1"
            if self.triplets_per_query(split) < 1:
                yield f"{split}_triplets_per_query must be >= 1"
        if not 0.0 <= self.two_change_probability <= 1.0:
            yield "two_change_probability must be in [0, 1]"
        low, high = self.idle_fraction
        if not 0.0 <= low <= high < 1.0 or self.num_frames - math.ceil(high * self.num_frames) < 2:
            yield (
                "idle_fraction must satisfy 0 <= low <= high < 1 and leave >= 2 action frames, "
                f"got {self.idle_fraction}"
            )
        if not 0.5 <= self.ease_exponent[0] <= self.ease_exponent[1]:
            yield f"ease_exponent must be an increasing range >= 0.5, got {self.ease_exponent}"
        if not 0.0 <= self.noise_std[0] <= self.noise_std[1]:
            yield f"noise_std must be an increasing range >= 0, got {self.noise_std}"
        if not 0.5 <= self.body_scale <= 1.6:
            yield f"body_scale must be in [0.5, 1.6], got {self.body_scale}"

    def clips_per_label(self, split: str) -> int:
        """Clips of each label rendered for `split`."""
        return int(getattr(self, f"{split}_clips_per_label"))

    def triplets_per_query(self, split: str) -> int:
        """Triplets formed with each clip of `split` as the query."""
        return int(getattr(self, f"{split}_triplets_per_query"))


@dataclass(frozen=True, order=True)
class SyntheticLabel:
    """One action class of the synthetic gym."""

    apparatus: str
    element: str
    rotations: float
    direction: str

    @property
    def name(self) -> str:
        """The label string, e.g. `"floor/salto/2.0/cw"`."""
        return f"{self.apparatus}/{self.element}/{self.rotations:.1f}/{self.direction}"

    @classmethod
    def parse(cls, name: str) -> SyntheticLabel:
        """Inverse of `name`.

        Raises:
            DataFormatError: `name` is not `apparatus/element/rotations/direction`.
        """
        parts = name.split("/")
        try:
            apparatus, element, rotations, direction = parts
            return cls(apparatus, element, float(rotations), direction)
        except ValueError:
            raise DataFormatError(f"label {name!r} is not of the form apparatus/element/rotations/direction") from None

    def changed_attributes(self, other: SyntheticLabel) -> tuple[str, ...]:
        """Names of the attributes (in `ATTRIBUTES` order) where `other` differs from this label."""
        return tuple(a for a in ATTRIBUTES if getattr(self, a) != getattr(other, a))


def label_space(config: SyntheticConfig | None = None) -> list[SyntheticLabel]:
    """All labels of the configuration, in the order of `labels.json` (label id = position)."""
    config = config or SyntheticConfig()
    return [
        SyntheticLabel(*values)
        for values in itertools.product(config.apparatus, config.elements, config.rotations, config.directions)
    ]


def load_label_list(dataset_dir: str | os.PathLike) -> list[str]:
    """The ordered label strings of a built synthetic dataset (`<dir>/labels.json`)."""
    path = Path(dataset_dir) / "labels.json"
    try:
        labels = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataFormatError(f"{str(path)!r} does not exist; is {str(dataset_dir)!r} a synthetic gym build?") from None
    except json.JSONDecodeError as error:
        raise DataFormatError(f"{str(path)!r} is not valid JSON ({error})") from None
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise DataFormatError(f"{str(path)!r} must hold a JSON list of label strings")
    return labels


# --------------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClipParams:
    """Everything that determines the frames of one clip (lengths and positions in frame units)."""

    label: SyntheticLabel
    size: int
    num_frames: int
    idle_before: int
    idle_after: int
    start_angle: float
    """Radians; 0 points right, angles grow clockwise on screen (y points down)."""
    ease_exponent: float
    start_xy: tuple[float, float]
    end_xy: tuple[float, float]
    arc_height: float
    half_length: float
    thickness: float
    head_radius: float
    body_color: tuple[int, int, int]
    tint: tuple[float, float, float]
    noise_std: float
    noise_seed: int

    @property
    def action_start(self) -> int:
        return self.idle_before

    @property
    def action_end(self) -> int:
        return self.num_frames - self.idle_after


def sample_clip_params(label: SyntheticLabel, config: SyntheticConfig, rng: np.random.Generator) -> ClipParams:
    """Draws the nuisances of one clip of `label`.

    The draw is symmetric under time reversal: the start angle is uniform on the circle, the travel
    direction of a salto is a fair coin, the idle frames before and after the action are exchangeable
    and the speed profile is symmetric, so `reverse_clip_params` maps the clips of one direction onto
    clips of the other with the same probability.
    """
    style = APPARATUS_STYLES[label.apparatus]
    frames = config.num_frames
    idle_total = int(
        rng.integers(math.ceil(config.idle_fraction[0] * frames), math.floor(config.idle_fraction[1] * frames) + 1)
    )
    idle_before = int(rng.integers(0, idle_total + 1))
    start_angle = float(rng.uniform(0.0, 2.0 * math.pi))
    ease = float(rng.uniform(*config.ease_exponent))
    half_length = float(rng.uniform(0.14, 0.19)) * config.body_scale
    thickness = float(rng.uniform(0.09, 0.11)) * config.body_scale
    head_radius = float(rng.uniform(0.075, 0.085)) * config.body_scale
    extent = half_length + head_radius
    base_y = style.ground - float(rng.uniform(0.2, 0.25))
    if label.element == "salto":
        # Travel from about a quarter to three quarters of the width, less for a body too long to stay
        # (mostly) in the frame there.
        start_x, end_x = float(rng.uniform(0.22, 0.32)), float(rng.uniform(0.68, 0.78))
        travel = (0.5 - 0.8 * extent) / 0.28
        if travel < 1.0:
            start_x, end_x = 0.5 + travel * (start_x - 0.5), 0.5 + travel * (end_x - 0.5)
        if rng.random() < 0.5:
            start_x, end_x = end_x, start_x
        arc_height = min(float(rng.uniform(0.12, 0.2)), max(base_y - extent, 0.0))
        start_xy, end_xy = (start_x, base_y), (end_x, base_y)
    else:
        center_x = float(rng.uniform(0.3, 0.7))
        arc_height = 0.0
        start_xy = end_xy = (center_x, base_y)
    hue = float(rng.uniform(90.0, 390.0)) % 360.0  # every hue but orange-yellow (the head is yellow)
    red, green, blue = colorsys.hsv_to_rgb(hue / 360.0, float(rng.uniform(0.65, 1.0)), float(rng.uniform(0.85, 1.0)))
    body_color = (round(red * 255), round(green * 255), round(blue * 255))
    tint = tuple(float(t) for t in rng.uniform(0.8, 1.2, size=3))
    noise_std = float(rng.uniform(*config.noise_std))
    noise_seed = int(rng.integers(0, 2**31 - 1))
    return ClipParams(
        label=label,
        size=config.size,
        num_frames=frames,
        idle_before=idle_before,
        idle_after=idle_total - idle_before,
        start_angle=start_angle,
        ease_exponent=ease,
        start_xy=start_xy,
        end_xy=end_xy,
        arc_height=arc_height,
        half_length=half_length,
        thickness=thickness,
        head_radius=head_radius,
        body_color=body_color,
        tint=tint,
        noise_std=noise_std,
        noise_seed=noise_seed,
    )


def reverse_clip_params(params: ClipParams) -> ClipParams:
    """Parameters of the clip whose noise-free frames are those of `params` in reverse order.

    The reversed clip has the opposite direction, starts at the angle where `params` ends, travels the
    other way and swaps the idle frames. Used to show that a bag of frames cannot tell the direction.
    """
    sign = 1.0 if params.label.direction == "cw" else -1.0
    label = replace(params.label, direction="ccw" if params.label.direction == "cw" else "cw")
    return replace(
        params,
        label=label,
        start_angle=params.start_angle + sign * 2.0 * math.pi * params.label.rotations,
        start_xy=params.end_xy,
        end_xy=params.start_xy,
        idle_before=params.idle_after,
        idle_after=params.idle_before,
    )


def action_progress(params: ClipParams) -> np.ndarray:
    """Progress of the action in [0, 1] for each frame (0 during idle frames before, 1 after).

    The speed profile `s**a / (s**a + (1 - s)**a)` is symmetric: progress(1 - s) = 1 - progress(s).
    """
    frames = np.arange(params.num_frames, dtype=np.float64)
    steps = max(params.action_end - params.action_start - 1, 1)
    linear = np.clip((frames - params.action_start) / steps, 0.0, 1.0)
    a = params.ease_exponent
    return linear**a / (linear**a + (1.0 - linear) ** a)


def render_background(apparatus: str, size: int, tint: Sequence[float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """The apparatus layout as a float32 (size, size, 3) image on the 0-255 scale."""
    style = APPARATUS_STYLES[apparatus]
    image = np.empty((size, size, 3), dtype=np.float32)
    image[:] = style.background
    for x0, y0, x1, y1, color in style.rects:
        image[round(y0 * size) : round(y1 * size), round(x0 * size) : round(x1 * size)] = color
    return image * np.asarray(tint, dtype=np.float32)


def render_clip(params: ClipParams) -> np.ndarray:
    """Renders the frames of a clip as uint8 (T, H, W, 3), vectorised over frames and pixels.

    The body is a thick segment with round ends and a yellow disc at its head end, drawn with
    one-pixel soft edges so that its orientation reads well even at 32 px.
    """
    size, frames = params.size, params.num_frames
    label = params.label
    progress = action_progress(params)
    sign = 1.0 if label.direction == "cw" else -1.0
    angle = params.start_angle + sign * 2.0 * math.pi * label.rotations * progress
    (x0, y0), (x1, y1) = params.start_xy, params.end_xy
    center_x = (x0 + (x1 - x0) * progress) * size
    center_y = (y0 + (y1 - y0) * progress - 4.0 * params.arc_height * progress * (1.0 - progress)) * size
    ux = np.cos(angle).astype(np.float32)[:, None, None]
    uy = np.sin(angle).astype(np.float32)[:, None, None]

    grid = np.arange(size, dtype=np.float32) + 0.5
    dx = grid[None, None, :] - center_x.astype(np.float32)[:, None, None]
    dy = grid[None, :, None] - center_y.astype(np.float32)[:, None, None]
    half_length = np.float32(params.half_length * size)
    along = np.clip(dx * ux + dy * uy, -half_length, half_length)
    body_distance = np.hypot(dx - along * ux, dy - along * uy)
    body = np.clip(np.float32(params.thickness * size / 2 + 0.5) - body_distance, 0.0, 1.0)[..., None]
    head_distance = np.hypot(dx - half_length * ux, dy - half_length * uy)
    head = np.clip(np.float32(params.head_radius * size + 0.5) - head_distance, 0.0, 1.0)[..., None]

    background = render_background(label.apparatus, size, params.tint)[None]
    video = background * (1.0 - body) + np.asarray(params.body_color, dtype=np.float32) * body
    video = video * (1.0 - head) + np.asarray(HEAD_COLOR, dtype=np.float32) * head
    if params.noise_std > 0:
        noise = np.random.default_rng(params.noise_seed).standard_normal((frames, size, size, 3), dtype=np.float32)
        video = video + np.float32(params.noise_std) * noise
    return np.clip(np.rint(video), 0, 255).astype(np.uint8)


_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def number_words(value: float) -> str:
    """A multiple of 0.5 in words: 0.5 -> "half", 2 -> "two", 2.5 -> "two and a half"."""
    whole, half = divmod(round(value * 2), 2)
    if whole > 10:
        raise ValueError(f"no words for {value}")
    if not half:
        return _NUMBER_WORDS[whole]
    return "half" if whole == 0 else f"{_NUMBER_WORDS[whole]} and a half"


def rotation_phrase(value: float) -> str:
    """ "half a rotation", "one rotation", "one and a half rotations", "three rotations"."""
    if value == 0.5:
        return "half a rotation"
    return f"{number_words(value)} rotation" + ("" if value == 1 else "s")


def _more_or_fewer(delta: float, word: str) -> str:
    if delta == 0.5:
        return f"half a rotation {word}"
    noun = "rotation" if delta == 1 else "rotations"
    return f"{number_words(delta)} {word} {noun}"


# Each template is (style, text); "absolute" texts name the target value, "relative" ones only make
# sense together with the query video.
_ROTATION_TEMPLATES_UP = (
    ("absolute", "with {target} instead of {query}"),
    ("absolute", "with {target}"),
    ("absolute", "make it {target}"),
    ("relative", "{more}"),
    ("relative", "add {delta}"),
    ("relative", "increase the rotations by {delta_words}"),
)
_ROTATION_TEMPLATES_DOWN = (
    ("absolute", "with {target} instead of {query}"),
    ("absolute", "with {target}"),
    ("absolute", "make it {target}"),
    ("relative", "{fewer}"),
    ("relative", "remove {delta}"),
    ("relative", "reduce the rotations by {delta_words}"),
)
_DIRECTION_TEMPLATES = (
    ("absolute", "rotating {target} instead of {query}"),
    ("absolute", "make it {target}"),
    ("absolute", "rotate {target}"),
    ("relative", "reverse the direction"),
    ("relative", "rotate the other way"),
    ("relative", "spin in the opposite direction"),
)
_APPARATUS_TEMPLATES = (
    ("absolute", "the same but {target}"),
    ("absolute", "{target} instead of {query}"),
    ("absolute", "do it {target}"),
)
_ELEMENT_TEMPLATES = (
    ("absolute", "as a {target} instead of a {query}"),
    ("absolute", "make it a {target}"),
    ("absolute", "do a {target}"),
    ("relative", "switch to the other element"),
)


def change_phrase(
    attribute: str, query: SyntheticLabel, target: SyntheticLabel, rng: np.random.Generator
) -> tuple[str, str]:
    """A phrase describing the change of one attribute, picked among its templates.

    Returns:
        `(text, style)` with style `"absolute"` or `"relative"`.
    """
    if attribute == "rotations":
        delta = abs(target.rotations - query.rotations)
        templates = list(_ROTATION_TEMPLATES_UP if target.rotations > query.rotations else _ROTATION_TEMPLATES_DOWN)
        if target.rotations == 2 * query.rotations:
            templates.append(("relative", "twice as many rotations"))
        elif 2 * target.rotations == query.rotations:
            templates.append(("relative", "half as many rotations"))
        values = {
            "target": rotation_phrase(target.rotations),
            "query": rotation_phrase(query.rotations),
            "delta": rotation_phrase(delta),
            "delta_words": number_words(delta),
            "more": _more_or_fewer(delta, "more"),
            "fewer": _more_or_fewer(delta, "fewer"),
        }
    elif attribute == "direction":
        templates = list(_DIRECTION_TEMPLATES)
        values = {"target": DIRECTION_PHRASES[target.direction], "query": DIRECTION_PHRASES[query.direction]}
    elif attribute == "apparatus":
        templates = list(_APPARATUS_TEMPLATES)
        values = {
            "target": APPARATUS_STYLES[target.apparatus].phrase,
            "query": APPARATUS_STYLES[query.apparatus].phrase,
        }
    elif attribute == "element":
        templates = list(_ELEMENT_TEMPLATES)
        values = {"target": ELEMENT_PHRASES[target.element], "query": ELEMENT_PHRASES[query.element]}
    else:
        raise ValueError(f"unknown attribute {attribute!r}")
    style, template = templates[int(rng.integers(len(templates)))]
    return template.format(**values), style


def modification_text(query: SyntheticLabel, target: SyntheticLabel, rng: np.random.Generator) -> tuple[str, str, str]:
    """The modification text turning `query` into `target` (one or two changed attributes).

    Returns:
        `(text, kind, style)`: kind is the changed attributes joined by `+` (e.g. `"rotations"`,
        `"apparatus+direction"`); style is `"absolute"`, `"relative"` or `"mixed"`.
    """
    changed = query.changed_attributes(target)
    if not 1 <= len(changed) <= 2:
        raise ValueError(f"{query.name} -> {target.name} changes {len(changed)} attributes; expected one or two")
    phrases = [change_phrase(attribute, query, target, rng) for attribute in changed]
    if len(phrases) == 2 and rng.random() < 0.5:
        phrases.reverse()
    styles = {style for _, style in phrases}
    style = styles.pop() if len(styles) == 1 else "mixed"
    return " and ".join(text for text, _ in phrases), "+".join(changed), style


# --------------------------------------------------------------------------------------------------
# Triplets and statistics
# --------------------------------------------------------------------------------------------------


@dataclass
class SyntheticClip:
    """One rendered clip of a split."""

    video_id: str
    label: SyntheticLabel
    label_id: int
    action_start: int
    action_end: int


@dataclass
class _Triplet:
    row: dict[str, Any]
    kind: str
    style: str
    changes: int = 0


def generate_triplets(
    split: str,
    clips: Sequence[SyntheticClip],
    triplets_per_query: int,
    rng: np.random.Generator,
    two_change_probability: float = 0.4,
) -> list[_Triplet]:
    """TF-CoVR-style triplets whose gallery is `clips` (one split).

    For each query clip, up to `triplets_per_query` distinct target labels are drawn: first the number
    of changed attributes (two with `two_change_probability`, when possible), then which attributes,
    then the new values, among labels that have clips in the split. Every clip of the target label is a
    valid target; the annotated `target_video` is one of them drawn with `rng`. A query is never among
    its own targets since the target label always differs from the query's.
    """
    by_label: dict[SyntheticLabel, list[str]] = {}
    for clip in clips:
        by_label.setdefault(clip.label, []).append(clip.video_id)
    for videos in by_label.values():
        videos.sort()
    available = sorted(by_label)
    triplets: list[_Triplet] = []
    for clip in clips:
        options: dict[tuple[str, ...], list[SyntheticLabel]] = {}
        for label in available:
            changed = clip.label.changed_attributes(label)
            if 1 <= len(changed) <= 2:
                options.setdefault(changed, []).append(label)
        for _ in range(triplets_per_query):
            if not options:
                break
            counts = sorted({len(kind) for kind in options})
            wanted = 2 if rng.random() < two_change_probability else 1
            changes = wanted if wanted in counts else counts[0]
            kinds = [kind for kind in options if len(kind) == changes]
            kind = kinds[int(rng.integers(len(kinds)))]
            candidates = options[kind]
            target = candidates.pop(int(rng.integers(len(candidates))))
            if not candidates:
                del options[kind]
            text, kind_name, style = modification_text(clip.label, target, rng)
            targets = by_label[target]
            row = {
                "query_id": f"{split}-{len(triplets)}",
                "query_video": clip.video_id,
                "query_label": clip.label.name,
                "modification": text,
                "target_video": targets[int(rng.integers(len(targets)))],
                "target_videos": list(targets),
                "target_label": target.name,
                "source": SOURCE,
            }
            triplets.append(_Triplet(row, kind_name, style, changes))
    return triplets


def triplet_statistics(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts of a triplet table: triplets, distinct queries, targets per query (mean / min / max)."""
    targets = [len(row["target_videos"]) for row in rows]
    return {
        "triplets": len(rows),
        "queries": len({row["query_video"] for row in rows}),
        "targets_per_query": {
            "mean": round(float(np.mean(targets)), 3) if targets else 0.0,
            "min": int(min(targets)) if targets else 0,
            "max": int(max(targets)) if targets else 0,
        },
        "self_targets": sum(row["query_video"] in row["target_videos"] for row in rows),
    }


# --------------------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------------------


def clip_id(split: str, index: int) -> str:
    """Video id of clip `index` of `split`, e.g. `syn_train_00012`."""
    return f"syn_{split}_{index:05d}"


def clip_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator that draws the nuisances of one clip, seeded by (seed, split, clip index)."""
    return np.random.default_rng([seed, SPLIT_CODES[split], 0, index])


def split_clips(config: SyntheticConfig, seed: int, split: str) -> list[tuple[SyntheticClip, ClipParams]]:
    """The clips of one split with their render parameters (no rendering).

    Each label gets `config.clips_per_label(split)` clips; their order is shuffled with a generator
    seeded by (seed, split), so that a clip's index does not reveal its label.
    """
    labels = label_space(config)
    label_ids = np.repeat(np.arange(len(labels)), config.clips_per_label(split))
    label_ids = np.random.default_rng([seed, SPLIT_CODES[split], 1]).permutation(label_ids)
    result = []
    for index, label_id in enumerate(label_ids.tolist()):
        label = labels[label_id]
        params = sample_clip_params(label, config, clip_rng(seed, split, index))
        clip = SyntheticClip(clip_id(split, index), label, label_id, params.action_start, params.action_end)
        result.append((clip, params))
    return result


def build_synthetic_benchmark(
    output_dir: str | os.PathLike, seed: int = 0, config: SyntheticConfig | None = None
) -> dict[str, Any]:
    """Renders the synthetic gym into `output_dir` and returns its statistics.

    Writes `videos/<video_id>.mp4`, `data/{train,val,test}.parquet` (triplets, `TRIPLET_SCHEMA`),
    `clips/{train,val,test}.parquet` (`CLIP_SCHEMA`), `labels.json`, `stats.json` and `README.md`.
    The same seed and config give byte-identical tables and identical frames.
    """
    config = config or SyntheticConfig()
    if int(seed) < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    seed = int(seed)
    output_dir = Path(output_dir)
    video_dir = output_dir / "videos"
    video_dir.mkdir(parents=True, exist_ok=True)
    labels = label_space(config)

    tables: dict[str, pa.Table] = {}
    stats: dict[str, Any] = {"seed": seed, "num_labels": len(labels), "splits": {}}
    action_fractions: list[float] = []
    for split in SPLITS:
        clips = split_clips(config, seed, split)
        logger.info("rendering %d %s clips", len(clips), split)
        for clip, params in clips:
            write_mp4(video_dir / f"{clip.video_id}.mp4", render_clip(params), fps=config.fps, crf=config.crf)
            action_fractions.append((clip.action_end - clip.action_start) / config.num_frames)
        split_list = [clip for clip, _ in clips]
        triplets = generate_triplets(
            split,
            split_list,
            config.triplets_per_query(split),
            np.random.default_rng([seed, SPLIT_CODES[split], 2]),
            config.two_change_probability,
        )
        rows = [triplet.row for triplet in triplets]
        tables[f"data/{split}.parquet"] = triplets_to_table(rows)
        tables[f"clips/{split}.parquet"] = _clips_table(split_list)
        per_label = Counter(clip.label_id for clip in split_list)
        stats["splits"][split] = {
            "arrow_bytes": {
                "triplets": tables[f"data/{split}.parquet"].nbytes,
                "clips": tables[f"clips/{split}.parquet"].nbytes,
            },
            "clips": len(split_list),
            "clips_per_label": config.clips_per_label(split),
            "labels_with_clips": len(per_label),
            **triplet_statistics(rows),
            "changed_attributes": {str(n): c for n, c in sorted(Counter(t.changes for t in triplets).items())},
            "modification_kinds": dict(sorted(Counter(t.kind for t in triplets).items())),
            "modification_styles": dict(sorted(Counter(t.style for t in triplets).items())),
            "example_modifications": list(dict.fromkeys(row["modification"] for row in rows))[:8],
        }
    stats["action_fraction"] = {
        "mean": round(float(np.mean(action_fractions)), 3),
        "min": round(float(np.min(action_fractions)), 3),
        "max": round(float(np.max(action_fractions)), 3),
    }
    stats["config"] = _jsonable(asdict(config))
    texts = {
        "labels.json": json.dumps([label.name for label in labels], indent=1) + "\n",
        "stats.json": json.dumps(stats, indent=2) + "\n",
        "README.md": dataset_card(stats, config),
    }
    write_files_atomically(output_dir, tables, texts)
    return stats


def _clips_table(clips: Sequence[SyntheticClip]) -> pa.Table:
    columns = {
        "video_id": [clip.video_id for clip in clips],
        "video": [f"videos/{clip.video_id}.mp4" for clip in clips],
        "label": [clip.label.name for clip in clips],
        "label_id": [clip.label_id for clip in clips],
        "apparatus": [clip.label.apparatus for clip in clips],
        "element": [clip.label.element for clip in clips],
        "rotations": [clip.label.rotations for clip in clips],
        "direction": [clip.label.direction for clip in clips],
        "action_start": [clip.action_start for clip in clips],
        "action_end": [clip.action_end for clip in clips],
    }
    return pa.Table.from_pydict(columns, schema=CLIP_SCHEMA)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    return value


# --------------------------------------------------------------------------------------------------
# Dataset card
# --------------------------------------------------------------------------------------------------


def _features_yaml(schema: pa.Schema) -> list[dict[str, str]]:
    features = []
    for schema_field in schema:
        if pa.types.is_list(schema_field.type):
            features.append(
                {"name": schema_field.name, "list": str(schema_field.type.value_type).replace("double", "float64")}
            )
        else:
            features.append({"name": schema_field.name, "dtype": str(schema_field.type).replace("double", "float64")})
    return features


def _size_category(count: int) -> str:
    for bound, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if count < bound:
            return name
    return "n>1M"


def card_metadata(stats: Mapping[str, Any]) -> dict[str, Any]:
    """The YAML header of the card: license, configs (`triplets` default, `clips`) and features."""
    splits = stats["splits"]
    configs = {"triplets": ("data", TRIPLET_SCHEMA), "clips": ("clips", CLIP_SCHEMA)}  # name -> (folder, schema)
    return {
        "license": "mit",
        "pretty_name": "TF-CoVR synthetic gym",
        "language": ["en"],
        "task_categories": ["video-classification"],
        "tags": ["composed-video-retrieval", "synthetic", "temporal-reasoning", "tf-covr"],
        "size_categories": [_size_category(sum(s["triplets"] for s in splits.values()))],
        "configs": [
            {
                "config_name": name,
                **({"default": True} if name == "triplets" else {}),
                "data_files": [{"split": split, "path": f"{folder}/{split}.parquet"} for split in SPLITS],
            }
            for name, (folder, _) in configs.items()
        ],
        "dataset_info": [
            {
                "config_name": name,
                "features": _features_yaml(schema),
                "splits": [
                    {
                        "name": split,
                        "num_bytes": splits[split]["arrow_bytes"][name],
                        "num_examples": splits[split][name],
                    }
                    for split in SPLITS
                ],
            }
            for name, (_, schema) in configs.items()
        ],
    }


def dataset_card(stats: Mapping[str, Any], config: SyntheticConfig) -> str:
    """The README.md of a build (a `huggingface_hub.DatasetCard`): YAML metadata through `DatasetCardData`
    (configs and features), generation, statistics and why single frames fail."""
    from huggingface_hub import DatasetCardData

    header = DatasetCardData(**card_metadata(stats)).to_yaml() + "\n"
    splits = stats["splits"]
    rows = "\n".join(
        f"| {split} | {s['clips']} | {s['labels_with_clips']} | {s['triplets']} | {s['queries']} | "
        f"{s['targets_per_query']['mean']:g} / {s['targets_per_query']['min']} / {s['targets_per_query']['max']} | "
        f"{s['changed_attributes'].get('1', 0)} / {s['changed_attributes'].get('2', 0)} |"
        for split, s in splits.items()
    )
    kinds = sorted({kind for s in splits.values() for kind in s["modification_kinds"]})
    kind_rows = "\n".join(
        f"| {kind} | " + " | ".join(str(splits[split]["modification_kinds"].get(kind, 0)) for split in SPLITS) + " |"
        for kind in kinds
    )
    styles = ("absolute", "relative", "mixed")
    style_rows = "\n".join(
        f"| {style} | " + " | ".join(str(splits[split]["modification_styles"].get(style, 0)) for split in SPLITS) + " |"
        for style in styles
    )
    examples = "\n".join(f'- "{text}"' for text in splits["train"]["example_modifications"])
    layouts = "; ".join(f"{name}: {APPARATUS_LAYOUTS[name]}" for name in config.apparatus)
    rotations = ", ".join(f"{r:g}" for r in config.rotations)
    groups = len(config.rotations) * len(config.directions)  # labels sharing apparatus and element
    action = stats["action_fraction"]
    return f"""---
{header}---

# TF-CoVR synthetic gym

A small, procedurally rendered benchmark for **temporally fine-grained composed video retrieval**, in
the format of [TF-CoVR](https://arxiv.org/abs/2506.05274). It runs anywhere (no video download) and
is built so that a model *must* use the order of frames: the query and its targets differ in what
only motion reveals — how many times a body rotates and in which direction — as well as in the
apparatus and the element.

Built with seed {stats["seed"]}: {stats["num_labels"]} labels, frames {config.size}×{config.size} px,
{config.num_frames} frames per clip at {config.fps} fps (H.264 mp4).

## Contents

- `videos/<video_id>.mp4` — the clips (`syn_<split>_<index>`).
- `data/{{train,val,test}}.parquet` — config `triplets` (default): the TF-CoVR triplet schema
  (`query_id`, `query_video`, `query_label`, `modification`, `target_video`, `target_videos`,
  `target_label`, `source`), identical to the converted TF-CoVR annotations, so every tool works on
  both. `target_videos` lists every clip of the target label in the split; `target_video` is one of
  them.
- `clips/{{train,val,test}}.parquet` — config `clips`: `video_id`, `video` (path relative to this
  directory), `label`, `label_id` (index into `labels.json`), the attributes `apparatus`, `element`,
  `rotations`, `direction`, and the action's frames `action_start <= t < action_end`; for stage-1
  classification.
- `labels.json` — the ordered label list; `stats.json` — the statistics below, machine-readable.

```python
from datasets import load_dataset

triplets = load_dataset("path/to/this/dir")           # DatasetDict: train / val / test triplets
clips = load_dataset("path/to/this/dir", "clips")     # clip -> label tables
```

## Generation

A label is `apparatus/element/rotations/direction`, e.g. `floor/salto/2.0/cw`:

- **apparatus**: the background layout and colour, visible in every frame ({layouts});
- **element** ({", ".join(config.elements)}): a *salto* travels along an arc across the frame while
  rotating; a *turn* rotates in place;
- **rotations** ({rotations} turns);
- **direction** (cw / ccw, as seen on screen).

The body is a thick bar with a yellow head disc. Each clip draws its nuisances from a numpy generator
seeded by (seed, split, clip index): body colour (any hue but yellow), length and thickness (body scale
{config.body_scale:g}), start
angle (uniform on the circle), position, travel direction of a salto, speed profile
(`s^a / (s^a + (1-s)^a)`, `a` in {config.ease_exponent[0]:g}–{config.ease_exponent[1]:g}), background
tint, Gaussian pixel noise (σ {config.noise_std[0]:g}–{config.noise_std[1]:g}) and idle frames before and after the
action. The action covers {action["min"]:.0%}–{action["max"]:.0%} of the frames (mean {action["mean"]:.0%}),
so frames sampled uniformly from the clip see it; sample enough of them that consecutive samples are less
than half a turn apart (8 frames for up to 1.5 rotations, as the main job does; 16 or more at 3 rotations).

Splits have disjoint clips: {config.train_clips_per_label} / {config.val_clips_per_label} /
{config.test_clips_per_label} clips per label in train / val / test. Each clip is the query of
{config.train_triplets_per_query} (train) or {config.val_triplets_per_query} / {config.test_triplets_per_query}
(val / test) triplets; the target label differs from the query's in one attribute or (with probability
{config.two_change_probability:g}) two. The gallery of a split is that split's clips; every clip of the
target label is a valid target and a query is never its own target.

Modification texts come from several templates per kind of change. *Absolute* texts name the target
value ("with three rotations", "the same but on the beam", "make it counterclockwise"); *relative*
texts only make sense together with the query video ("one more rotation", "reverse the direction",
"switch to the other element"). Numbers are written as words. Examples:

{examples}

## Why single-frame models must fail

- **No single frame tells the rotation count or the direction.** The start angle is uniform on the
  circle, so at any frame index the body's angle is uniform whatever the label, and its position
  depends only on the progress of the action, never on the rotation count or the direction. A frame
  reveals the apparatus and the element only: a single-frame classifier can at best pick the right
  group of {groups} labels among {stats["num_labels"]}, i.e. reach {1 / groups:.0%} accuracy.
- **No order-less pooling of frames tells the direction.** The ccw clips are distributed exactly as
  the time-reversed cw clips: reversing a clip swaps its idle frames (drawn exchangeably), its travel
  direction (a fair coin) and maps the speed profile onto itself (it is symmetric), and starts at the
  angle where the original ended (uniform too). A cw clip and its reversal have the same multiset of
  frames, so any function of the set of frames gives the same answer for both.
- **Order-less pooling sees the rotation count only weakly**: faster rotation spreads the sampled
  orientations differently around the circle, and for a salto the position along the arc acts as a
  clock. Following the head from frame to frame is the reliable way to count, so stage-1 accuracy
  above the single-frame ceiling ({1 / groups:.0%}) measures temporal understanding.

## Statistics (measured by the builder)

| split | clips | labels | triplets | queries | targets per query (mean / min / max) | one / two changed attributes |
|---|---|---|---|---|---|---|
{rows}

Modification kinds (changed attributes):

| kind | train | val | test |
|---|---|---|---|
{kind_rows}

Modification styles:

| style | train | val | test |
|---|---|---|---|
{style_rows}

## License and citation

MIT. Generated with the `modeling_tfcovr` library (`scripts/build_synthetic.py --seed {stats["seed"]}`);
the task and the triplet format follow TF-CoVR:

```bibtex
{CITATION}
```
"""
