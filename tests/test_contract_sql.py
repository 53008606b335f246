"""The contract compiler: one quoting for every name and value a contract puts into SQL, so odd
column and table names compile to SQL that runs, for delivery rules (through GX) and stage rules
(in DuckDB) alike."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from open_data_contract_standard.model import OpenDataContractStandard

from pipelines import contract_sql
from pipelines.contract_runner import check_rules
from pipelines.contract_sql import (
    delivery_rules,
    delivery_views,
    fill_parameters,
    identifier,
    literal,
    stage_rules,
)
from pipelines.contracts import Contract, ContractError, load_contract

# Names a contract may legally use that naive quoting breaks: a double quote, a space, braces
# (older GX queries were formatted), a single quote.
QUOTED = 'say "hi"'
SPACED = "net amount"
BRACED = "code{x}"
APOSTROPHE = "o'brien"


def _contract(properties: list[dict], table: str = "odd", quality: list | None = None) -> Contract:
    model = OpenDataContractStandard.model_validate(
        {
            "apiVersion": "v3.1.0",
            "kind": "DataContract",
            "id": "odd",
            "name": "odd",
            "version": "1.0.0",
            "status": "active",
            "schema": [
                {
                    "name": table,
                    "physicalType": "table",
                    "description": "Odd names.",
                    "properties": properties,
                    "quality": quality or [],
                }
            ],
        }
    )
    return Contract(name="odd", version="1.0.0", path=Path("odd.yaml"), model=model)


def test_identifiers_and_literals_double_their_own_quotes():
    assert identifier('say "hi"') == '"say ""hi"""'
    assert literal("o'brien") == "'o''brien'"
    assert contract_sql.DUCKDB.name("code{x}") == '"code{x}"'


def test_parameters_fill_whole_names_only():
    sql = "where p = $partner and q = $partner_code"
    assert fill_parameters(sql, {"partner": "CJIB"}, contract_sql.DUCKDB) == (
        "where p = 'CJIB' and q = $partner_code"
    )


ODD_DELIVERY = [
    {"name": QUOTED, "logicalType": "string", "physicalType": "VARCHAR", "required": True},
    {
        "name": SPACED,
        "logicalType": "integer",
        "physicalType": "BIGINT",
        "required": True,
        "logicalTypeOptions": {"minimum": 1},
    },
    {
        "name": BRACED,
        "logicalType": "string",
        "physicalType": "VARCHAR",
        "unique": True,
        "logicalTypeOptions": {"pattern": "^[A-Z]{2}$"},
    },
    {"name": APOSTROPHE, "logicalType": "string", "physicalType": "VARCHAR"},
]


def test_odd_column_names_compile_and_run_through_gx():
    contract = _contract(ODD_DELIVERY)
    rows = [  # line, QUOTED, SPACED, BRACED, APOSTROPHE
        (2, "a", "5", "AB", "x"),
        (3, None, "0", "AB", "y"),  # required broken, below minimum, BRACED repeated
        (4, "c", "1.5", "abc", "z"),  # not a whole number, pattern broken
    ]
    with duckdb.connect() as con:
        columns = ", ".join(f"{identifier(c)} varchar" for c in contract.columns)
        con.execute(f"create table delivery_text (line bigint, {columns})")
        con.executemany(f"insert into delivery_text values ({', '.join('?' * 5)})", rows)
        con.execute("create macro looks_like_raw_bsn(x) as false")
        for statement in delivery_views(contract):
            con.execute(statement)
        rules = delivery_rules(contract, parameters={})
        report = check_rules(con, rules, contract=contract)
    failed = {r.rule: r.example_lines for r in report.failures}
    assert failed == {
        f"{QUOTED}.required": [3],
        f"{SPACED}.format": [4],
        f"{SPACED}.minimum": [3],
        f"{BRACED}.pattern": [4],
        f"{BRACED}.unique": [2, 3],
    }
    assert {r.rule for r in report.results} >= {f"{APOSTROPHE}.raw_bsn"}


def test_odd_table_and_column_names_compile_and_run_in_duckdb():
    contract = _contract(
        [
            {"name": QUOTED, "physicalType": "VARCHAR", "required": True, "description": "q."},
            {
                "name": SPACED,
                "physicalType": "BIGINT",
                "unique": True,
                "logicalTypeOptions": {"maximum": 9},
                "description": "n.",
            },
        ],
        table="odd table",
        quality=[
            {
                "name": "small",
                "type": "sql",
                "query": 'select count(*) from {object} where "net amount" > $limit',
            }
        ],
    )
    schema = contract.model.schema_[0]
    with duckdb.connect() as con:
        con.execute('create table "odd table" ("say ""hi""" varchar, "net amount" bigint)')
        con.execute("""insert into "odd table" values ('a', 1), (null, 10), ('c', 10)""")
        counts = {
            rule.name: con.execute(rule.query).fetchone()[0]
            for rule in stage_rules(schema, "odd table", {"limit": 5})
        }
        for statement in contract_sql.comment_statements(schema, "odd table"):
            con.execute(statement)
        assert con.execute(contract_sql.select_columns(schema, "odd table")).fetchall()
    assert counts == {
        f"odd table.{QUOTED}.required": 1,
        f"odd table.{SPACED}.unique": 1,
        f"odd table.{SPACED}.maximum": 2,
        "odd table.small": 2,
        "odd table.no_linkage_pseudonym": 0,
    }


def test_the_real_contracts_compile_to_the_same_rule_names():
    """Rule names are what partners look up: pin those of the delivered contracts."""
    claims = load_contract("claims", "1.0.0")
    names = [r.name for r in delivery_rules(claims, parameters={"partner": "CJIB"})]
    assert names[0] == f"{claims.columns[0]}.required"
    assert "stage.stage_known" in names and "debt_assistance.format" in names
    assert len(names) == len(set(names))


def test_a_sql_rule_that_does_not_count_rows_is_a_contract_error():
    contract = _contract(
        [
            {
                "name": "x",
                "logicalType": "string",
                "physicalType": "VARCHAR",
                "quality": [{"name": "bad", "type": "sql", "query": "select x from {object}"}],
            }
        ]
    )
    with pytest.raises(ContractError, match=r"rule x\.bad: SQL rules must read"):
        delivery_rules(contract, parameters={})


def test_a_tables_stage_rules_are_counted_in_one_scan_with_the_same_counts():
    """`check_tables` counts a table's rules in one pass: each value is read through a function
    that counts its calls, and the counts equal those of the rules' own queries."""
    from duckdb.sqltypes import BIGINT

    from pipelines.stage_contracts import count_rules

    contract = _contract(
        [
            {"name": "x", "physicalType": "BIGINT", "required": True, "description": "x."},
            {
                "name": "y",
                "physicalType": "BIGINT",
                "unique": True,
                "logicalTypeOptions": {"maximum": 400},
                "description": "y.",
            },
        ],
        table="t",
        quality=[
            {
                "name": "odd",
                "type": "sql",
                "query": "select count(*) from {object} as a where a.x % 2 = 1",
            },
            {
                "name": "even",
                "type": "sql",
                "query": "select count(*) from {object} where x % 2 = 0",
            },
        ],
    )
    calls = []

    def read(value: int) -> int:
        calls.append(value)
        return value

    rules = stage_rules(contract.model.schema_[0], "t")
    with duckdb.connect() as con:
        con.execute("create table base as select range as x, range % 500 as y from range(1000)")
        separately = [con.execute(r.query.replace('"t"', "base")).fetchall()[0][0] for r in rules]
        con.create_function("read_x", read, [BIGINT], BIGINT, side_effects=True)
        con.execute("create view t as select read_x(x) as x, y from base")
        together = count_rules(con, "t", rules)
    assert together == separately
    assert together[:4] == [0, 500, 198, 500]  # x.required, y.unique, y.maximum, odd
    assert len(calls) == 1000


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # an alias, and a rule without one that names the table itself: not merged under the alias
        ("select count(*) from {object} as s where s.flag = 1", 2),
        ("select count(*) from {object} where {object}.k > 3", 6),
        # a comment at the end, and a condition that is not a boolean (as `where` reads it)
        ("select count(*) from {object} where flag = 1 -- the odd ones", 2),
        ("select count(*) from {object} where flag", 2),
    ],
)
def test_sql_rules_count_what_their_own_query_counts(query, expected):
    """Whatever shape a contract's SQL rule has, the combined scan counts what the rule's own
    query counts, for stage rules and delivery rules alike."""
    from pipelines.contract_runner import count_offending
    from pipelines.stage_contracts import count_rules

    others = [
        {
            "name": "alias",
            "type": "sql",
            "query": "select count(*) from {object} as s where s.k = 1",
        },
        {"name": "plain", "type": "sql", "query": "select count(*) from {object} where k = 2"},
    ]
    rule = {"name": "r", "type": "sql", "query": query}
    columns = [
        {"name": "k", "physicalType": "BIGINT", "description": "k."},
        {"name": "flag", "physicalType": "BIGINT", "description": "f.", "quality": [rule]},
    ]
    stage = _contract(
        [*columns[:1], {**columns[1], "quality": None}], table="t", quality=[*others, rule]
    )
    delivery = _contract([*columns[:1], {**columns[1], "quality": [*others, rule]}])
    with duckdb.connect() as con:
        con.execute(
            "create table t as select range as k, case when range < 4 then range % 2 "
            "end as flag from range(10)"
        )
        con.execute("create view delivery as select k + 2 as line, * from t")
        con.execute("create macro looks_like_raw_bsn(x) as false")
        stage_counts = count_rules(con, "t", stage_rules(stage.model.schema_[0], "t"))
        delivery_counts = count_offending(con, delivery_rules(delivery, parameters={}), "delivery")
    stage_by_name = dict(
        zip([r.name for r in stage_rules(stage.model.schema_[0], "t")], stage_counts, strict=True)
    )
    delivery_by_name = dict(
        zip([r.name for r in delivery_rules(delivery, parameters={})], delivery_counts, strict=True)
    )
    assert stage_by_name["t.r"] == expected and delivery_by_name["flag.r"] == expected
    assert stage_by_name["t.alias"] == stage_by_name["t.plain"] == 1
    assert delivery_by_name["flag.alias"] == delivery_by_name["flag.plain"] == 1


@pytest.mark.parametrize(
    "tail",
    [
        "group by flag",
        "order by k",
        "limit 5",
        "union select 1",
        "having count(*) > 1",
        "; select 1",
    ],
)
def test_a_sql_rule_with_a_clause_after_its_condition_is_counted_on_its_own(tail):
    """Only `... where <one row condition>` joins the combined scan; a clause after it (outside
    parentheses and quotes) would change what the rule counts."""
    assert (
        contract_sql._simple_condition(f"select count(*) from {{object}} where k > 0 {tail}")
        is None
    )
    kept = contract_sql._simple_condition(
        "select count(*) from {object} as a "
        "where a.k in (select k from t group by k) and a.s <> 'limit'"
    )
    assert kept is not None and kept[0] == "a"


def test_the_pseudonym_guard_finds_a_linkage_pseudonym_in_any_text_column():
    """The stage guard (no 64-hex value past the link) counts exactly the rows holding one, in
    any text column; 63 or 65 hex characters, upper case or null are not one."""
    contract = _contract(
        [
            {"name": "a", "physicalType": "VARCHAR", "description": "a."},
            {"name": "b", "physicalType": "VARCHAR", "description": "b."},
        ],
        table="t",
    )
    [guard] = [r for r in stage_rules(contract.model.schema_[0], "t") if "linkage" in r.name]
    hexes = "0123456789abcdef" * 4
    rows = [
        (hexes, None),  # found
        (None, hexes),  # found
        (hexes[:63], hexes + "0"),
        (hexes.upper(), "x" * 64),
        (None, None),
    ]
    with duckdb.connect() as con:
        con.execute("create table t (a varchar, b varchar)")
        con.executemany("insert into t values (?, ?)", rows)
        assert con.execute(guard.query).fetchall() == [(2,)]
        assert con.execute(f"select {guard.aggregate} from t").fetchall() == [(2,)]
