"""Small-cell suppression for aggregates meant for wide sharing.

Primary suppression withholds every cell of 1 to 9 persons. Secondary suppression then makes sure
no withheld cell can be recovered by subtraction: for every published total, the cells that add
up to it are a group, and a group (cells plus its total) must never have exactly one withheld
member. Where it has, the smallest published cell of the group is withheld too, and so on until
nothing changes. Zero cells are not small (a zero reveals nobody) but may be withheld as partners.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

SMALL_CELL = 10  # cells with 1..SMALL_CELL-1 persons are withheld

Cell = Hashable


def is_small(count: int) -> bool:
    return 0 < count < SMALL_CELL


def suppress(
    values: dict[Cell, int],
    groups: Iterable[tuple[Cell, list[Cell]]],
    forced: Iterable[Cell] = (),
) -> set[Cell]:
    """The cells (totals included) to withhold.

    Args:
        values: every cell and every total, by key.
        groups: (total key, keys of the cells that add up to it).
        forced: cells to withhold whatever their value: totals of cells another published
            table withholds (a month of a gemeente when one of its nights is withheld).

    Returns:
        The withheld keys: primary (small, or forced) plus secondary (protecting those).
    """
    groups = list(groups)
    withheld = {key for key, count in values.items() if is_small(count)}
    withheld |= {key for key in forced if key in values}
    changed = True
    while changed:
        changed = False
        for total, members in groups:
            group = [total, *members]
            if sum(key in withheld for key in group) != 1:
                continue
            published = [key for key in members if key not in withheld] or [total]
            # Prefer a cell that hides something (non-zero), then the smallest.
            partner = min(published, key=lambda key: (values[key] == 0, values[key], str(key)))
            withheld.add(partner)
            changed = True
    return withheld


def suppress_grid(
    cells: dict[tuple[str, str], int], rows: list[str], columns: list[str]
) -> tuple[dict[tuple[str, str], int], set[tuple[str, str]]]:
    """A rows x columns table with row totals (column 'total'), column totals (row 'ALL') and a
    grand total, suppressed. Returns all values (margins included) and the withheld keys."""
    values = {(r, c): cells.get((r, c), 0) for r in rows for c in columns}
    for r in rows:
        values[(r, "total")] = sum(values[(r, c)] for c in columns)
    for c in [*columns, "total"]:
        values[("ALL", c)] = sum(values[(r, c)] for r in rows)
    groups = [((r, "total"), [(r, c) for c in columns]) for r in [*rows, "ALL"]]
    groups += [(("ALL", c), [(r, c) for r in rows]) for c in [*columns, "total"]]
    return values, suppress(values, groups)
