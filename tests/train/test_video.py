"""Dream GIFs for the trainer (dreamstream.train.dream.video.log_dream_gif): frames, layout, colours, skipped fields."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
from agent_fixtures import grid_spec, image_spec, random_batch, tiny_config, vector_spec

from dreamstream.train.dream.video import GAP, IMAGINED, OBSERVED, PALETTE, compare_image, log_dream_gif, render
from dreamstream.train.model.agent import Agent

HEADER = 12


def panel_origin(row: int, column: int, panel: int, heights: list[int] | None = None) -> tuple[int, int]:
    """Top-left pixel of a panel in a frame whose columns are all `panel` wide (rows `heights` high)."""
    heights = heights or [panel] * (row + 1)
    return HEADER + GAP + sum(h + 3 * GAP for h in heights[:row]), GAP + column * (panel + 2 * GAP)


def test_image_gif_has_one_frame_per_step_and_marks_the_dream(tmp_path: Path) -> None:
    spec = image_spec(side=16)  # drawn 4x: 64-pixel panels
    agent = Agent(spec, tiny_config())
    batch = random_batch(spec, steps=6, batch=3)
    path = log_dream_gif(agent, batch, tmp_path / "dream.gif", rows=2)
    assert path == tmp_path / "dream.gif"
    frames = iio.imread(path)
    assert frames.shape == (6, HEADER + 2 * (64 + 3 * GAP) + 4, 3 * 64 + 7 * GAP, 3)
    # One more batch row adds one more row of panels.
    taller = iio.imread(log_dream_gif(agent, batch, tmp_path / "three.gif", rows=3))
    assert taller.shape[1] == frames.shape[1] + 64 + 3 * GAP
    # The truth panel of row 1 shows the batch's frame (up to the GIF's palette).
    y, x = panel_origin(1, 0, 64)
    for t in (0, 5):
        want = render(spec.observations["image"], batch["image"][t : t + 1, 1].numpy())[0]
        assert np.abs(frames[t, y : y + 64, x : x + 64].astype(int) - want).mean() < 6
    # The dream's border is green while the model observes (3 of 6 steps), then red.
    y, x = panel_origin(0, 2, 64)
    border = frames[:, y - GAP, x + 30].astype(int)
    for t in range(6):
        colour = OBSERVED if t < 3 else IMAGINED
        assert np.abs(border[t] - colour).max() < 20, (t, border[t])


def test_grid_gif_draws_grids_and_the_probed_map_with_the_palette(tmp_path: Path) -> None:
    spec = grid_spec(with_map=True)  # grid 7x7 (63-pixel panels), map 5x5 (60), direction is not drawn
    agent = Agent(spec, tiny_config())
    batch = random_batch(spec, steps=4, batch=2)
    frames = iio.imread(log_dream_gif(agent, batch, tmp_path / "grid.gif"))
    heights = [63, 60, 63, 60]  # per sequence: grid, map
    assert frames.shape == (4, HEADER + sum(h + 3 * GAP for h in heights) + 4, 3 * 63 + 7 * GAP, 3)
    for seq, t in ((0, 0), (1, 3)):
        y, x = panel_origin(2 * seq, 0, 63, heights)
        grid = batch["grid"][t, seq].numpy()
        want = PALETTE[grid[..., 0]].swapaxes(0, 1).repeat(9, 0).repeat(9, 1)  # x-first storage, x drawn right
        np.testing.assert_array_equal(frames[t, y : y + 63, x : x + 63], want)
        y, x = panel_origin(2 * seq + 1, 0, 63, heights)
        mapped = batch["map"][t, seq].numpy()
        want = PALETTE[mapped[..., 0]].swapaxes(0, 1).repeat(12, 0).repeat(12, 1)
        np.testing.assert_array_equal(frames[t, y : y + 60, x : x + 60], want)


def test_padding_rows_are_drawn_black(tmp_path: Path) -> None:
    spec = image_spec(side=16)
    agent = Agent(spec, tiny_config())
    batch = random_batch(spec, steps=4, batch=1)
    batch["valid"] = torch.tensor([[True], [True], [False], [False]])
    frames = iio.imread(log_dream_gif(agent, batch, tmp_path / "pad.gif"))
    y, x = panel_origin(0, 0, 64)
    assert frames[3, y : y + 64, x : x + 64].max() < 10 and frames[1, y : y + 64, x : x + 64].max() > 50


def test_nothing_drawable_writes_nothing(tmp_path: Path) -> None:
    spec = vector_spec()
    agent = Agent(spec, tiny_config())
    assert log_dream_gif(agent, random_batch(spec), tmp_path / "none.gif") is None
    assert not (tmp_path / "none.gif").exists()


def test_compare_image_puts_labelled_columns_side_by_side() -> None:
    spec = grid_spec(with_map=True)
    fields = {n: spec.observations[n] for n in ("grid", "map")}
    batch = random_batch(spec, steps=2, batch=1)
    columns = {f"t{t}": {n: batch[n][t, 0].numpy() for n in fields} for t in range(2)}
    image = compare_image(fields, columns)
    assert image.shape == (HEADER + (63 + 2 * GAP) + (60 + 2 * GAP) + GAP, 2 * (63 + 2 * GAP) + GAP, 3)
    x = GAP + 63 + 2 * GAP  # column t1
    want = render(fields["grid"], batch["grid"][1:2, 0].numpy())[0]
    np.testing.assert_array_equal(image[HEADER + GAP : HEADER + GAP + 63, x : x + 63], want)
