"""even_shares: the one split of a count into near-equal parts (collector budgets, loader batch rows)."""

from __future__ import annotations

import pytest

from dreamstream.datasets.shares import even_shares


@pytest.mark.parametrize(("total", "parts", "shares"), [
    (10, 3, [4, 3, 3]), (9, 3, [3, 3, 3]), (2, 4, [1, 1, 0, 0]), (0, 2, [0, 0]), (7, 1, [7]),
])
def test_shares_sum_to_the_total_and_differ_by_at_most_one(total, parts, shares):
    assert even_shares(total, parts) == shares
