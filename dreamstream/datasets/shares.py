"""Near-equal shares of a count: collectors split their budgets over workers, the loader its batch rows."""

from __future__ import annotations


def even_shares(total: int, parts: int) -> list[int]:
    """`total` split into `parts` counts that differ by at most one, the larger ones first."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]
