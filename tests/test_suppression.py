"""Small-cell suppression: nothing small is shown, and nothing withheld can be recomputed."""

from __future__ import annotations

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from privacy.hashing import create_person_ids, hub_person_id
from privacy.suppression import is_small, suppress, suppress_grid

ROWS, COLUMNS = ["GM1", "GM2", "GM3", "GM4"], ["1", "2", "3", "4+"]


def groups_of(rows, columns):
    groups = [((r, "total"), [(r, c) for c in columns]) for r in [*rows, "ALL"]]
    return groups + [(("ALL", c), [(r, c) for r in rows]) for c in [*columns, "total"]]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=16, max_size=16))
def test_no_small_cell_shown_and_none_recoverable(counts):
    cells = {(r, c): counts[i * 4 + j] for i, r in enumerate(ROWS) for j, c in enumerate(COLUMNS)}
    values, withheld = suppress_grid(cells, ROWS, COLUMNS)
    assert not any(is_small(v) for k, v in values.items() if k not in withheld)
    for total, members in groups_of(ROWS, COLUMNS):
        # A published total with exactly one withheld member would give that member away.
        assert sum(k in withheld for k in [total, *members]) != 1


def test_secondary_suppression_by_hand():
    # Row GM1: 5 is small; with its total shown, one more cell of GM1 must go (the smallest, 20).
    cells = {
        ("GM1", "1"): 100,
        ("GM1", "2"): 5,
        ("GM1", "3"): 20,
        ("GM1", "4+"): 30,
        ("GM2", "1"): 100,
        ("GM2", "2"): 50,
        ("GM2", "3"): 40,
        ("GM2", "4+"): 30,
    }
    values, withheld = suppress_grid(cells, ["GM1", "GM2"], COLUMNS)
    assert ("GM1", "2") in withheld and ("GM1", "3") in withheld
    # Columns '2' and '3' now have one withheld cell each: GM2's cells there go too.
    assert ("GM2", "2") in withheld and ("GM2", "3") in withheld
    assert values[("GM1", "total")] == 155 and ("GM1", "total") not in withheld


def test_zero_is_not_small_and_a_plain_group():
    values = {"t": 12, "a": 0, "b": 3, "c": 9}
    withheld = suppress(values, [("t", ["a", "b", "c"])])
    assert withheld == {"b", "c"}


def test_hub_person_ids_in_sql_equal_the_reference():
    secret = bytes(range(32))
    pseudonyms = [f"{i:064x}" for i in range(50)]
    with duckdb.connect() as con:
        con.execute("create table p as select unnest($p) as person_pseudonym", {"p": pseudonyms})
        create_person_ids(con, "select person_pseudonym from p", secret)
        got = dict(con.execute("select * from person_ids").fetchall())
    assert got == {p: hub_person_id(secret, p) for p in pseudonyms}
    assert all(len(v) == 32 for v in got.values())
