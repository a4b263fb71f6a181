"""ImageStats sums uint8 frames in small-integer blocks: exact for any chunk length, at the largest values."""

from __future__ import annotations

import numpy as np
import pytest

from dreamstream.pipelines.accumulators import IMAGE_BLOCK, SQUARE_ROWS, ImageStats


@pytest.mark.parametrize("rows", [1, SQUARE_ROWS - 1, SQUARE_ROWS + 1, IMAGE_BLOCK + 1, 3 * IMAGE_BLOCK + 7])
def test_image_sums_are_exact_at_every_block_boundary(rows):
    rng = np.random.default_rng(rows)
    frames = rng.integers(0, 256, (rows, 5, 4, 3), dtype=np.uint8)
    frames[: rows // 2] = 255  # the worst case for a uint16 block sum and for the squares
    stats = ImageStats((5, 4, 3))
    stats.update(frames)
    wide = frames.astype(np.int64)
    np.testing.assert_array_equal(stats.sum, wide.sum(0))
    np.testing.assert_array_equal(stats.sumsq, (wide**2).sum(0))
    np.testing.assert_array_equal(stats.min, frames.min(0))
    np.testing.assert_array_equal(stats.max, frames.max(0))
    assert stats.n == rows
