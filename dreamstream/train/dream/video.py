"""Dream videos: real frames | posterior reconstructions | open-loop predictions, side by side.

    path = log_dream_gif(agent, batch, Path("dream.gif"))     # the trainer's `train.gif_interval` GIFs

PyDreamer's dream video: the model observes the first half of each sequence and imagines the rest under the
recorded actions. Each GIF frame shows, for the first few batch rows and every drawable field, three panels:
the data, the reconstruction from the posterior, and the dream (the reconstruction while observing, the
prior's prediction after). The dream panel's border is green while the model observes and red once it only
imagines; a bar along the bottom shows the time step.

Drawable fields: `image` fields (H, W, C) as they are (upscaled to about 64 pixels), and categorical grids
(width, height, channels, x first as MiniGrid encodes its `grid` and `map`) as one colour per class of the
first channel (the object) from the fixed PALETTE, x to the right; vector and scalar fields are not drawn.
`map` is predicted by the map probe.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from dreamstream.datasets.spec import FieldSpec

log = logging.getLogger(__name__)

PALETTE = np.array([
    (0, 0, 0),  # 0  MiniGrid unseen
    (40, 40, 40),  # 1  empty
    (128, 128, 128),  # 2  wall
    (205, 195, 160),  # 3  floor
    (150, 95, 30),  # 4  door
    (245, 205, 0),  # 5  key
    (50, 110, 245),  # 6  ball
    (165, 70, 210),  # 7  box
    (40, 200, 70),  # 8  goal
    (255, 120, 0),  # 9  lava
    (235, 35, 35),  # 10 agent
    (0, 200, 200), (255, 110, 180), (150, 255, 150), (110, 55, 20), (175, 175, 255), (255, 255, 255),
    (0, 100, 0), (110, 0, 110), (0, 0, 150), (200, 200, 0), (0, 130, 130), (130, 0, 0), (255, 190, 120),
], dtype=np.uint8)
"""Class index -> RGB colour for categorical grids; 0-10 follow MiniGrid's object order (unseen black, empty
dark grey, wall grey, floor, door, key, ball, box, goal green, lava orange, agent red); indices beyond cycle."""

PANEL = 64
"""Panels are scaled up (by whole pixels) towards this many pixels on their longer side."""
GAP = 2
BACKGROUND = np.array((24, 24, 24), np.uint8)
OBSERVED = np.array((40, 200, 70), np.uint8)
IMAGINED = np.array((235, 35, 35), np.uint8)
COLUMNS = ("truth", "recon", "dream")


def drawable(field: FieldSpec) -> bool:
    """Images (H, W, C) and categorical grids (H, W, channels) can be drawn; vectors and scalars cannot."""
    return field.kind in ("image", "categorical") and len(field.shape) == 3


def render(field: FieldSpec, frames: np.ndarray) -> np.ndarray:
    """[N, *field.shape] -> uint8 RGB [N, h, w, 3], upscaled by a whole factor towards PANEL pixels."""
    height, width = field.shape[:2]
    scale = max(1, PANEL // max(height, width))
    frames = np.asarray(frames)
    if field.kind == "categorical":  # stored x-first (width, height) as MiniGrid encodes grids: draw x rightwards
        rgb = PALETTE[frames[..., 0].astype(np.int64) % len(PALETTE)].swapaxes(1, 2)
    else:
        channels = field.shape[2]
        if channels >= 3:
            rgb = frames[..., :3]
        else:
            rgb = np.repeat(frames[..., :1], 3, axis=-1)
        rgb = rgb.astype(np.uint8, copy=False)
    if scale > 1:
        rgb = rgb.repeat(scale, axis=1).repeat(scale, axis=2)
    return np.ascontiguousarray(rgb)


def _label(text: str, width: int, height: int = 12) -> np.ndarray:
    """A text label [height, width, 3] (PIL's default font), or a blank strip if PIL cannot draw."""
    canvas = np.empty((height, width, 3), np.uint8)
    canvas[:] = BACKGROUND
    try:
        from PIL import Image, ImageDraw
    except ImportError:  # pragma: no cover - pillow comes with imageio
        return canvas
    image = Image.fromarray(canvas)
    ImageDraw.Draw(image).text((1, 0), text, fill=(220, 220, 220))
    return np.asarray(image)


def dream_frames(fields: dict[str, FieldSpec], truth: Sequence[dict[str, np.ndarray | None]],
                 recon: Sequence[dict[str, np.ndarray]], dream: Sequence[dict[str, np.ndarray]],
                 imagined: np.ndarray) -> np.ndarray:
    """The frames of a dream video: uint8 [T, H, W, 3].

    One block per sequence (stacked top to bottom), in it one row per field with the panels truth | recon |
    dream. truth/recon/dream: per sequence, field -> [T, *shape] (a missing or None truth is left blank).
    `imagined` bool [T]: steps the dream predicts without observing (its border turns red).
    """
    steps = len(imagined)
    rows: list[list[np.ndarray | None]] = []
    for seq in range(len(recon)):
        for name, field in fields.items():
            shown = truth[seq].get(name)
            rows.append([None if shown is None else render(field, shown[:steps]),
                         render(field, recon[seq][name][:steps]), render(field, dream[seq][name][:steps])])
    col_width = [max(row[c].shape[2] for row in rows if row[c] is not None) for c in range(3)]
    row_height = [max(p.shape[1] for p in row if p is not None) for row in rows]
    header = 12
    width = sum(col_width) + 2 * GAP * 3 + GAP
    height = header + sum(row_height) + 2 * GAP * len(rows) + GAP * len(rows) + 4
    canvas = np.empty((steps, height, width, 3), np.uint8)
    canvas[:] = BACKGROUND
    x = GAP
    for c, name in enumerate(COLUMNS):
        canvas[:, :header, x : x + col_width[c]] = _label(name, col_width[c], header)
        x += col_width[c] + 2 * GAP
    border = np.where(imagined[:, None], IMAGINED[None], OBSERVED[None])  # [T, 3]
    y = header
    for r, row in enumerate(rows):
        x = GAP
        for c, panel in enumerate(row):
            if c == 2:  # the dream's border says whether the model is observing or imagining
                h, w = panel.shape[1:3]
                canvas[:, y : y + h + 2 * GAP, x - GAP : x + w + GAP] = border[:, None, None]
            if panel is not None:
                h, w = panel.shape[1:3]
                canvas[:, y + GAP : y + GAP + h, x : x + w] = panel
            x += col_width[c] + 2 * GAP
        y += row_height[r] + 3 * GAP
    bar = (np.arange(width)[None] * steps < (np.arange(steps)[:, None] + 1) * width)  # [T, width]
    colours = np.broadcast_to(border[:, None], (steps, width, 3))[bar]
    for line in (-3, -2):
        canvas[:, line][bar] = colours
    return canvas


def dream_strip(fields: dict[str, FieldSpec], truth: dict[str, np.ndarray | None], recon: dict[str, np.ndarray],
                dream: dict[str, np.ndarray], imagined: np.ndarray, max_columns: int = 24) -> np.ndarray:
    """One sequence as a picture: time left to right (at most `max_columns` steps, evenly picked), and for
    every field the rows truth, recon and dream; imagined steps are underlined red, observed ones green."""
    steps = len(imagined)
    picked = np.unique(np.linspace(0, steps - 1, min(steps, max_columns)).round().astype(int))
    blocks = []
    for name, field in fields.items():
        panels = []
        for source in (truth.get(name), recon[name], dream[name]):
            panels.append(None if source is None else render(field, source[picked]))
        blocks.append(panels)
    h = max(p.shape[1] for block in blocks for p in block if p is not None)
    w = max(p.shape[2] for block in blocks for p in block if p is not None)
    label_w = 36
    width = label_w + len(picked) * (w + GAP) + GAP
    height = sum(3 * (h + GAP) + 3 * GAP for _ in blocks) + GAP
    canvas = np.empty((height, width, 3), np.uint8)
    canvas[:] = BACKGROUND
    y = GAP
    for name, block in zip(fields, blocks, strict=True):
        for r, panels in enumerate(block):
            canvas[y : y + 12, :label_w] = _label(COLUMNS[r], label_w)[:, :label_w]
            if panels is not None:
                for i in range(len(picked)):
                    x = label_w + i * (w + GAP)
                    ph, pw = panels.shape[1:3]
                    canvas[y : y + ph, x : x + pw] = panels[i]
            y += h + GAP
        for i, t in enumerate(picked):  # observed / imagined marks under the block
            x = label_w + i * (w + GAP)
            canvas[y : y + GAP, x : x + w] = IMAGINED if imagined[t] else OBSERVED
        y += 3 * GAP
        del name
    return canvas


def compare_image(fields: dict[str, FieldSpec], columns: dict[str, dict[str, np.ndarray]]) -> np.ndarray:
    """Single frames side by side: one labelled column per entry of `columns` (label -> field -> [*shape]),
    one row per field; for comparing decodes, e.g. before and after an intervention on a latent."""
    panels = {label: {name: render(field, frames[name][None])[0] for name, field in fields.items()}
              for label, frames in columns.items()}
    width = max(p.shape[1] for column in panels.values() for p in column.values())
    heights = [max(column[name].shape[0] for column in panels.values()) for name in fields]
    canvas = np.empty((12 + sum(h + 2 * GAP for h in heights) + GAP, len(columns) * (width + 2 * GAP) + GAP, 3),
                      np.uint8)
    canvas[:] = BACKGROUND
    for c, (label, column) in enumerate(panels.items()):
        x = GAP + c * (width + 2 * GAP)
        canvas[:12, x : x + width] = _label(label, width)
        y = 12 + GAP
        for name, h in zip(fields, heights, strict=True):
            panel = column[name]
            canvas[y : y + panel.shape[0], x : x + panel.shape[1]] = panel
            y += h + 2 * GAP
    return canvas


def write_gif(path: Path, frames: np.ndarray, fps: float = 5.0) -> Path:
    """Write uint8 [T, H, W, 3] frames as a looping GIF with one palette for all frames.

    (imageio's pillow writer quantises every frame on its own: 1.6 s for 50 small frames; one shared palette
    made from a sample of the frames takes under 0.1 s and keeps colours stable from frame to frame.)"""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    sample = np.concatenate(list(frames[:: max(1, len(frames) // 8)]), axis=0)
    palette = Image.fromarray(sample).quantize(255, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    images = [Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return path


def write_png(path: Path, image: np.ndarray) -> Path:
    import imageio.v3 as iio

    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, image, extension=".png")
    return path


def drawn_fields(agent) -> dict[str, FieldSpec]:
    """The fields of the agent's spec that a dream video shows: decoded (or probed) and drawable."""
    names = list(agent.wm.decoders) + (["map"] if agent.probe is not None else [])
    return {name: agent.spec.observations[name] for name in names if drawable(agent.spec.observations[name])}


def _decode(agent, features: Tensor, names: Sequence[str]) -> dict[str, np.ndarray]:
    out = {}
    for name in names:
        decoder = agent.probe.decoder if name not in agent.wm.decoders else agent.wm.decoders[name]
        out[name] = decoder.decode(features).cpu().numpy()
    return out


@torch.no_grad()
def log_dream_gif(agent, batch: dict[str, Tensor], path: Path, rows: int = 4, fps: float = 5.0) -> Path | None:
    """Write a dream GIF of the first `rows` rows of a [T, B] batch to `path` (one frame per step); None when
    the spec has no drawable field. The model observes the first T // 2 steps and imagines the rest."""
    fields = drawn_fields(agent)
    if not fields:
        return None
    device = next(agent.parameters()).device
    sub = {k: v[:, :rows].to(device) for k, v in batch.items() if isinstance(v, Tensor) and v.dim() >= 2}
    steps, size = sub["reset"].shape
    context = max(1, steps // 2)
    training = agent.training
    agent.eval()
    try:
        post, dream = agent.wm.dream_features(sub, agent.initial_state(size, device), context)
        recon_arrays, dream_arrays = _decode(agent, post, list(fields)), _decode(agent, dream, list(fields))
    finally:
        agent.train(training)
    valid = sub.get("valid")
    truth = []
    for b in range(size):
        shown = {name: sub[name][:, b].cpu().numpy() for name in fields if name in sub}
        if valid is not None:  # padding rows show black
            keep = valid[:, b].cpu().numpy()
            shown = {k: np.where(keep.reshape(-1, *[1] * (v.ndim - 1)), v, 0) for k, v in shown.items()}
        truth.append(shown)
    recon = [{k: v[:, b] for k, v in recon_arrays.items()} for b in range(size)]
    dreamt = [{k: v[:, b] for k, v in dream_arrays.items()} for b in range(size)]
    imagined = np.arange(steps) >= context
    return write_gif(Path(path), dream_frames(fields, truth, recon, dreamt, imagined), fps)
