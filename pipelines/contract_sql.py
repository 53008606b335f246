"""The one compiler from an ODCS contract to SQL: the checks of delivery contracts (counted in one
scan at ingest and reported through Great Expectations, `pipelines.contract_runner`) and of stage
contracts (run in DuckDB before a stage's output moves on), plus the few statements a contract's
columns shape (typed views, column lists, COMMENTs).

Every name and value a contract puts into SQL passes through `identifier` or `literal`, so a
column called `a "b"` or `net amount` compiles to valid SQL and can never end a string early.

The two users word their rules differently and count differently (a delivery rule is a row
condition whose offending rows are listed by line, a stage rule counts them), so each has its own
assembler below, built from the same conditions and the same quoting. Rule names and
descriptions are part of the interface: partners look delivery rule names up, and both appear in
reports.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pipelines.contracts import Contract, ContractError

TEXT_SUFFIX = "__text"
LINKAGE_PSEUDONYM = "[0-9a-f]{64}"
LINKAGE_PSEUDONYM_BYTES = 64
STAGED_VIEW = "delivery_staged"  # line + the contract's typed columns (see `delivery_views`)

_INTEGER = "-?[0-9]{1,18}"
_DATE = "[0-9]{4}-[0-9]{2}-[0-9]{2}"
_COUNT_PREFIX = re.compile(r"^\s*select\s+count\(\*\)\s+from\s+", re.IGNORECASE)


# ---------------------------------------------------------------- quoting


def identifier(name: str) -> str:
    """A SQL identifier: double-quoted, embedded double quotes doubled."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A SQL string literal: single-quoted, embedded single quotes doubled."""
    return "'" + text.replace("'", "''") + "'"


def sql_value(value: Any) -> str:
    """A number as written; anything else (text, dates, booleans) as a string literal."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return literal(str(value))
    return str(value)


@dataclass(frozen=True)
class Quoting:
    """How names and values are written into SQL that cannot bind parameters."""

    def name(self, name: str) -> str:
        return identifier(name)

    def text(self, text: str) -> str:
        return literal(text)

    def value(self, value: Any) -> str:
        return sql_value(value)


DUCKDB = Quoting()


def fill_parameters(query: str, parameters: Mapping[str, Any] | None, quoting: Quoting) -> str:
    """Write the `$name` placeholders of a contract's SQL rule as values.

    Used where the SQL cannot be bound: a delivery rule's SQL is written into the combined scan
    and into GX's report, and a stage's policy number must stay in the policy file. Values are
    the hub's own (validated); `$name` never matches the start of a longer `$name_more`."""
    for key, value in (parameters or {}).items():
        query = re.sub(rf"\${re.escape(key)}\b", lambda _, v=value: quoting.value(v), query)
    return query


@dataclass(frozen=True)
class Rule:
    """One stage check: a stable name, a sentence, and the SQL that counts offending rows.

    `query` counts them on its own. Most rules are also an `aggregate` over the table (named
    `alias` when the contract's SQL names it), so that all of a table's rules are counted in one
    scan (`pipelines.stage_contracts.check_tables`); a rule of another shape has none."""

    name: str
    description: str
    query: str
    aggregate: str | None = None
    alias: str | None = None
    names_table: bool = False  # the condition says `{object}.column`, which an alias hides


def counted(condition: str) -> str:
    """A row condition as an aggregate for a combined scan: the rows for which it holds, as
    `where` counts them (a comment at its end cannot swallow what follows)."""
    return f"count(*) filter (where (\n{condition}\n))"


def _counted(table: str, condition: str) -> tuple[str, str]:
    """A row condition as a count query over `table` and as an aggregate for a combined scan."""
    return f"select count(*) from {identifier(table)} where {condition}", counted(condition)


def scan_groups(rules: list[Any]) -> dict[str | None, list[int]]:
    """Which rules (by position) share one scan: those the table goes by the same alias in. A
    rule without an alias joins the first aliased group unless it names the table itself
    (`{object}.column`), which that alias would hide; rules that are no row condition are left
    out (they are counted on their own)."""
    groups: dict[str | None, list[int]] = {}
    for index, rule in enumerate(rules):
        if _combinable(rule):
            groups.setdefault(rule.alias, []).append(index)
    aliased = [alias for alias in groups if alias is not None]
    if None in groups and aliased:
        keep = [i for i in groups[None] if rules[i].names_table]
        groups[aliased[0]] += [i for i in groups[None] if not rules[i].names_table]
        if keep:
            groups[None] = keep
        else:
            del groups[None]
    return groups


def _combinable(rule: Any) -> bool:
    return (rule.aggregate if isinstance(rule, Rule) else rule.condition) is not None


_NAMES_TABLE = re.compile(r"\{object\}\s*\.")
_TOP_LEVEL_CLAUSE = re.compile(
    r"\b(group\s+by|order\s+by|having|limit|offset|union|except|intersect|window|qualify)\b|;",
    re.IGNORECASE,
)


def _simple_condition(query: str) -> tuple[str | None, str] | None:
    """(alias, condition) of a contract SQL rule `select count(*) from {object} [as a] where C`
    whose C is one row condition (no clause after it at the top level); None for any other
    shape, which is then counted with its own query."""
    match = _SIMPLE_SQL_RULE.match(query)
    if match is None:
        return None
    condition = match["condition"]
    if _TOP_LEVEL_CLAUSE.search(_top_level(condition)):
        return None
    return match["alias"], condition


def _top_level(sql: str) -> str:
    """`sql` with every parenthesised part and every quoted string or identifier blanked."""
    out, depth, quote = [], 0, ""
    for char in sql:
        if quote:
            quote = "" if char == quote else quote
            out.append(" ")
        elif char in "'\"":
            quote = char
            out.append(" ")
        elif char == "(":
            depth += 1
            out.append(" ")
        elif char == ")":
            depth = max(depth - 1, 0)
            out.append(" ")
        else:
            out.append(char if depth == 0 else " ")
    return "".join(out)


# ---------------------------------------------------------------- conditions both users share


def not_matching(column: str, pattern: str) -> str:
    """Rows whose non-null `column` does not match `pattern` (both already quoted)."""
    return f"{column} is not null and not regexp_full_match({column}, {pattern})"


def beyond(column: str, key: str, value: str) -> str:
    """Rows below a `minimum` or above a `maximum` (`value` already written as SQL)."""
    return f"{column} {'<' if key == 'minimum' else '>'} {value}"


# ---------------------------------------------------------------- delivery contracts


OBJECT = "{object}"  # the checked relation, as contracts write it
_SIMPLE_SQL_RULE = re.compile(
    r"^\s*select\s+count\(\*\)\s+from\s+\{object\}"
    r"(?:\s+(?:as\s+)?(?!where\b)(?P<alias>[A-Za-z_][A-Za-z0-9_]*))?"
    r"\s+where\s+(?P<condition>.+?)\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)


@dataclass(frozen=True)
class DeliveryRule:
    """One rule of a delivery contract: a stable name partners look up, a sentence, and the rows
    it finds (never a value: only their `line`).

    Most rules are a row `condition` over the checked relation (`{object}`, called `alias` when
    the contract's SQL names it; a condition may read the whole relation again in a subquery):
    all of those are counted together in one scan (`pipelines.contract_runner`). A contract SQL
    rule of another shape (a join, say) has no condition and is counted on its own through
    `lines_sql`."""

    name: str
    description: str
    condition: str | None
    alias: str | None = None
    query: str | None = None  # `select line from {object} ...` when there is no condition

    def relation(self, table: str) -> str:
        """The checked table as this rule's SQL names it."""
        return (
            f"{identifier(table)} as {identifier(self.alias)}" if self.alias else identifier(table)
        )

    @property
    def names_table(self) -> bool:
        """The condition says `{object}.column`, which an alias for the table would hide."""
        return self.condition is not None and bool(_NAMES_TABLE.search(self.condition))

    def where(self, table: str) -> str:
        """The row condition with `{object}` written as `table` (only for rules with one); on
        lines of its own, so that a comment at its end cannot swallow what follows."""
        if self.condition is None:
            raise ValueError(f"rule {self.name} is not a row condition")
        return f"(\n{self.condition.replace(OBJECT, identifier(table))}\n)"

    def lines_sql(self, table: str) -> str:
        """The offending rows' lines, in order."""
        if self.condition is None:
            own = (self.query or "").replace(OBJECT, identifier(table))
            return f"select line from ({own}) order by line"
        return f"select line from {self.relation(table)} where {self.where(table)} order by line"


def text_column(name: str, logical_type: str | None) -> str:
    """The column holding a property's delivered text in the `delivery` view."""
    return name if logical_type in (None, "string") else f"{name}{TEXT_SUFFIX}"


_FORMATS = {
    # logicalType: (condition a well-written value meets, given the quoted text column; wording)
    "integer": (
        lambda t: f"regexp_full_match({t}, {DUCKDB.text(_INTEGER)})",
        "{name} must be a whole number of cents (digits only, no decimals)",
    ),
    "date": (
        lambda t: (
            f"regexp_full_match({t}, {DUCKDB.text(_DATE)}) and try_cast({t} as date) is not null"
        ),
        "{name} must be a date written YYYY-MM-DD",
    ),
    "boolean": (
        lambda t: f"{t} in ('true', 'false')",
        "{name} must be true or false (lower case)",
    ),
}


def _presence_rules(prop: Any) -> list[DeliveryRule]:
    """Present and well written: checked on the delivered text, so a badly written number is a
    format error, never a confusing range error."""
    name = prop.name
    text = identifier(text_column(name, prop.logicalType))
    rules = []
    if prop.required:
        rules.append(
            DeliveryRule(f"{name}.required", f"{name} must not be empty", f"{text} is null")
        )
    if prop.logicalType in _FORMATS:
        well_written, wording = _FORMATS[prop.logicalType]
        rules.append(
            DeliveryRule(
                f"{name}.format",
                wording.format(name=name),
                f"{text} is not null and not ({well_written(text)})",
            )
        )
    return rules


def _option_rules(prop: Any) -> list[DeliveryRule]:
    """The value rules of `logicalTypeOptions`, on the typed column."""
    name, column, options = prop.name, identifier(prop.name), prop.logicalTypeOptions or {}
    rules = []
    if "pattern" in options:
        condition = not_matching(column, literal(options["pattern"]))
        rules.append(
            DeliveryRule(f"{name}.pattern", f"{name} must match {options['pattern']}", condition)
        )
    for key, op in (("minLength", "<"), ("maxLength", ">")):
        if key in options:
            rules.append(
                DeliveryRule(
                    f"{name}.{key}",
                    f"{name} length must be {key} {options[key]}",
                    f"length({column}) {op} {int(options[key])}",
                )
            )
    for key, word in (("minimum", "at least"), ("maximum", "at most")):
        if key in options:
            rules.append(
                DeliveryRule(
                    f"{name}.{key}",
                    f"{name} must be {word} {options[key]}",
                    beyond(column, key, sql_value(options[key])),
                )
            )
    return rules


def _unique_rule(prop: Any) -> list[DeliveryRule]:
    """Every row of a repeated value is listed, so the partner sees all of them."""
    if not prop.unique:
        return []
    column = identifier(prop.name)
    condition = f"{column} in (select {column} from {OBJECT} group by {column} having count(*) > 1)"
    return [
        DeliveryRule(
            f"{prop.name}.unique", f"{prop.name} must be unique within the file", condition
        )
    ]


def _count_rule_sql(quality: Any, rule: str) -> str:
    """A contract SQL rule's query, checked to count rows of `{object}`."""
    query = quality.query or ""
    if not _COUNT_PREFIX.match(query) or OBJECT not in query:
        raise ContractError(
            f"rule {rule}: SQL rules must read `select count(*) from {{object}} ...`"
        )
    return query


def _delivery_quality_rule(
    column: str, quality: Any, parameters: Mapping[str, str]
) -> DeliveryRule:
    name = f"{column}.{quality.name}"
    description = quality.description or name
    if quality.type == "library" and quality.metric == "invalidValues":
        allowed = ", ".join(literal(v) for v in quality.arguments["validValues"])
        quoted = identifier(column)
        return DeliveryRule(
            name, description, f"{quoted} is not null and {quoted} not in ({allowed})"
        )
    if quality.type == "sql":
        # Contract SQL counts offending rows. `select count(*) from {object} [as a] where C` is
        # the row condition C (counted with the other rules in one scan); any other shape
        # lists its rows with the same query selecting `line`, counted on its own.
        query = fill_parameters(_count_rule_sql(quality, name), parameters, DUCKDB)
        simple = _simple_condition(query)
        if simple:
            return DeliveryRule(name, description, simple[1], simple[0])
        lines = _COUNT_PREFIX.sub("select line from ", query, count=1)
        return DeliveryRule(name, description, None, query=lines)
    raise ContractError(f"rule {name}: unsupported quality rule {quality.type}")


def leak_guard_rules(contract: Contract) -> list[DeliveryRule]:
    """The hub's own guard: no text column may hold what looks like a raw BSN."""
    return [
        DeliveryRule(
            f"{p.name}.raw_bsn",
            f"{p.name} holds what looks like a raw BSN (9 digits passing the elfproef); "
            "BSNs must be pseudonymised before delivery",
            f"looks_like_raw_bsn({identifier(p.name)})",
        )
        for p in contract.properties
        if p.logicalType in (None, "string")
    ]


def delivery_rules(contract: Contract, *, parameters: Mapping[str, str]) -> list[DeliveryRule]:
    """Every rule of a delivery contract, over the `delivery` view: presence and format first (a
    value rule on a badly written column says nothing useful), then values, then the leak guard.

    `parameters` fills `$name` placeholders of the contract's SQL rules (e.g. `$partner`,
    `$extract_date`) as literals: the combined scan and GX's report cannot bind parameters.
    """
    presence: list[DeliveryRule] = []
    values: list[DeliveryRule] = []
    for prop in contract.properties:
        presence += _presence_rules(prop)
        values += _option_rules(prop) + _unique_rule(prop)
        values += [_delivery_quality_rule(prop.name, q, parameters) for q in prop.quality or []]
    return presence + values + leak_guard_rules(contract)


def delivery_views(contract: Contract) -> list[str]:
    """The views over `delivery_text` (every column as delivered text) that ingest checks and
    stages: `delivery` has each column typed as the contract says (`try_cast`) plus, for
    non-text columns, the delivered text as `<column>__text`; `delivery_staged` has only the
    contract's typed columns, in contract order."""
    parts = ["line"]
    for prop in contract.properties:
        column = identifier(prop.name)
        if text_column(prop.name, prop.logicalType) == prop.name:
            parts.append(column)
        else:
            parts.append(f"try_cast({column} as {prop.physicalType}) as {column}")
            parts.append(f"{column} as {identifier(prop.name + TEXT_SUFFIX)}")
    staged = ["line"] + [identifier(c) for c in contract.columns]
    return [
        f"create or replace view delivery as select {', '.join(parts)} from delivery_text",
        f"create or replace view {STAGED_VIEW} as select {', '.join(staged)} from delivery",
    ]


# ---------------------------------------------------------------- stage contracts (DuckDB)


def _property_stage_rules(table: str, prop: Any) -> list[Rule]:
    """A table column's rules as counts; a null in a unique column counts as a repeat."""
    relation, column = identifier(table), identifier(prop.name)
    options = prop.logicalTypeOptions or {}
    rules = []
    if prop.required:
        query, aggregate = _counted(table, f"{column} is null")
        rules.append(
            Rule(f"{table}.{prop.name}.required", f"{prop.name} is never null", query, aggregate)
        )
    if prop.unique:
        aggregate = f"count(*) - count(distinct {column})"
        rules.append(
            Rule(
                f"{table}.{prop.name}.unique",
                f"{prop.name} is unique",
                f"select {aggregate} from {relation}",
                aggregate,
            )
        )
    if "pattern" in options:
        query, aggregate = _counted(table, not_matching(column, literal(options["pattern"])))
        rules.append(
            Rule(
                f"{table}.{prop.name}.pattern",
                f"{prop.name} matches {options['pattern']}",
                query,
                aggregate,
            )
        )
    for key in ("minimum", "maximum"):
        if key in options:
            query, aggregate = _counted(table, beyond(column, key, sql_value(options[key])))
            rules.append(
                Rule(
                    f"{table}.{prop.name}.{key}",
                    f"{prop.name} {key} {options[key]}",
                    query,
                    aggregate,
                )
            )
    return rules


def _pseudonym_guard(table: str, properties: Iterable[Any]) -> list[Rule]:
    """The privacy invariant in code: no text value may look like a linkage pseudonym."""
    text_columns = [identifier(p.name) for p in properties if p.physicalType == "VARCHAR"]
    if not text_columns:
        return []
    # Only a value of exactly 64 bytes can be 64 hex characters: CASE runs the regular
    # expression for those alone (on a national claims table: 1.0 s -> 0.15 s).
    condition = " or ".join(
        f"(case when strlen({c}) = {LINKAGE_PSEUDONYM_BYTES} "
        f"then regexp_full_match({c}, {literal(LINKAGE_PSEUDONYM)}) else false end)"
        for c in text_columns
    )
    query, aggregate = _counted(table, condition)
    return [
        Rule(
            f"{table}.no_linkage_pseudonym",
            "no text value looks like a linkage pseudonym",
            query,
            aggregate,
        )
    ]


def stage_rules(schema: Any, table: str, parameters: Mapping[str, int] | None = None) -> list[Rule]:
    """The rules of one table of a stage contract (`schema` is its ODCS schema object), each a
    query returning the number of offending rows: column rules, then the table's SQL rules
    (`{object}` is the table; `$name` placeholders filled with whole numbers), then the guard.
    A SQL rule `select count(*) from {object} [as a] where C` is also that aggregate over C;
    the table read again inside C stays the table."""
    properties = schema.properties or []
    rules = [rule for prop in properties for rule in _property_stage_rules(table, prop)]
    whole = {key: int(value) for key, value in (parameters or {}).items()}
    for quality in schema.quality or []:
        filled = fill_parameters(quality.query, whole, DUCKDB)
        simple = _simple_condition(filled)
        aggregate = alias = None
        names_table = False
        if simple:
            alias, condition = simple
            aggregate = counted(condition.replace(OBJECT, identifier(table)))
            names_table = bool(_NAMES_TABLE.search(condition))
        rules.append(
            Rule(
                f"{table}.{quality.name}",
                quality.description or quality.name,
                filled.replace(OBJECT, identifier(table)),
                aggregate,
                alias,
                names_table,
            )
        )
    return rules + _pseudonym_guard(table, properties)


def qualified(table: str, schema_name: str | None = None) -> str:
    """`"schema"."table"` (or `"table"` in the default schema)."""
    return f"{identifier(schema_name)}.{identifier(table)}" if schema_name else identifier(table)


def comment_statements(
    schema: Any,
    table: str,
    *,
    kind: str = "table",
    schema_name: str | None = None,
    preface: str = "",
) -> list[str]:
    """COMMENT ON statements for a table (or view: `kind`) and its columns, from the contract's
    descriptions; `preface` goes before the table's description."""
    grain = schema.dataGranularityDescription
    text = f"{schema.description.strip()} Grain: {grain}." if grain else schema.description
    name = qualified(table, schema_name)
    statements = [f"comment on {kind} {name} is {literal(preface + text)}"]
    statements += [
        f"comment on column {name}.{identifier(p.name)} is {literal(p.description.strip())}"
        for p in schema.properties or []
    ]
    return statements


def empty_table_statement(schema: Any, table: str) -> str:
    """`create table` with the contract's columns and types and no rows."""
    columns = ", ".join(f"{identifier(p.name)} {p.physicalType}" for p in schema.properties or [])
    return f"create table {identifier(table)} ({columns})"


def parquet_view_statement(
    schema: Any,
    table: str,
    files: list[str],
    *,
    schema_name: str | None = None,
    columns_of: dict[str, frozenset[str]] | None = None,
) -> str:
    """A persistent view with the contract's columns, in contract order, over Parquet files.

    A view stored in a database file cannot hold bound parameters, so the paths are written as
    quoted literals. A file written under an older contract version lacks the columns added
    since: `columns_of` names the columns such a file has (known from the version it was
    published under, so no file is opened to find out), and the view reads those files in a
    branch of their own with nulls for the rest (`union_by_name` would read every file's
    metadata whenever the view is bound). With no files, an empty relation."""
    properties = schema.properties or []
    if not files:
        nulls = ", ".join(
            f"cast(null as {p.physicalType}) as {identifier(p.name)}" for p in properties
        )
        return f"create view {qualified(table, schema_name)} as select {nulls} where false"
    everything = frozenset(p.name for p in properties)
    groups: dict[frozenset[str], list[str]] = {}
    for file in files:
        groups.setdefault((columns_of or {}).get(file, everything), []).append(file)
    branches = []
    for present, paths in groups.items():
        columns = ", ".join(
            identifier(p.name)
            if p.name in present
            else f"cast(null as {p.physicalType}) as {identifier(p.name)}"
            for p in properties
        )
        branches.append(
            f"select {columns} from read_parquet([{', '.join(literal(f) for f in paths)}])"
        )
    body = " union all ".join(branches)
    return f"create view {qualified(table, schema_name)} as {body}"


def select_columns(schema: Any, table: str) -> str:
    """`select <the contract's columns, in contract order> from <table>`."""
    columns = ", ".join(identifier(p.name) for p in schema.properties or [])
    return f"select {columns} from {identifier(table)}"


# ---------------------------------------------------------------- change-only history


@dataclass(frozen=True)
class HistoryShape:
    """How a per-run-date table is kept change-only (`pipelines.history`): by its primary key
    without run_date; run counters (customProperty `history: run_counter`) are kept as of each
    version's first run date and counted on by one per run date in the views."""

    table: str
    keys: tuple[str, ...]
    values: tuple[str, ...]
    counters: tuple[str, ...]
    types: dict[str, str]
    columns: tuple[str, ...]  # the contract's, in order, run_date included


def history_shape(schema: Any, table: str) -> HistoryShape | None:
    """The table's shape, or None when the contract gives it no primary key with run_date."""
    properties = schema.properties or []
    keyed = sorted((p for p in properties if p.primaryKey), key=lambda p: p.primaryKeyPosition or 0)
    if "run_date" not in {p.name for p in keyed}:
        return None

    def counter(p: Any) -> bool:
        return any(
            c.property == "history" and c.value == "run_counter" for c in p.customProperties or []
        )

    keys = tuple(p.name for p in keyed if p.name != "run_date")
    return HistoryShape(
        table=table,
        keys=keys,
        values=tuple(
            p.name
            for p in properties
            if p.name != "run_date" and p.name not in keys and not counter(p)
        ),
        counters=tuple(p.name for p in properties if counter(p)),
        types={p.name: p.physicalType for p in properties},
        columns=tuple(p.name for p in properties),
    )


def _row_hashes(shape: HistoryShape) -> str:
    """Two 64-bit hashes of a row's keys and values (not run_date, not counters), over the
    columns in two orders: what makes two rows of two run dates the same version. Compared
    together with the key, a changed row passing for unchanged needs both to collide for that
    one key. (DuckDB's `hash` may change between DuckDB versions; both sides of a comparison
    are hashed in the same run, and the digests say which DuckDB made them.)"""
    names = [identifier(c) for c in (*shape.keys, *shape.values)]
    return f"hash({', '.join(names)}) as h1, hash({', '.join(reversed(names))}) as h2"


def history_hashed_sql(shape: HistoryShape, relation: str, *, whole: bool) -> str:
    """`relation`'s rows with their hashes: all columns (`whole`), or only keys and counters."""
    kept = "*" if whole else ", ".join(identifier(c) for c in (*shape.keys, *shape.counters))
    return f"select {kept}, {_row_hashes(shape)} from {identifier(relation)}"


def history_added_sql(shape: HistoryShape) -> str:
    """Rows of `cur_state` whose keys and hashes are not in `prev_hashed` (new or changed),
    stamped `valid_from`. The hashes are computed again as the rows are read (cheaper than
    keeping a hashed copy of every column; `cur_hashed` keeps keys and hashes only)."""
    columns = ", ".join(f"cur.{identifier(c)}" for c in shape.columns if c != "run_date")
    using = ", ".join(identifier(c) for c in (*shape.keys, "h1", "h2"))
    hashed = history_hashed_sql(shape, "cur_state", whole=True)
    return (
        f"select {columns}, cast($valid_from as date) as valid_from "
        f"from ({hashed}) as cur anti join prev_hashed using ({using})"
    )


def history_removed_sql(shape: HistoryShape) -> str:
    """Keys of `prev_hashed` rows not in `cur_hashed` (gone or changed), stamped `removed_on`."""
    keys = ", ".join(f"prev.{identifier(c)}" for c in shape.keys)
    using = ", ".join(identifier(c) for c in (*shape.keys, "h1", "h2"))
    return (
        f"select {keys}, cast($removed_on as date) as removed_on "
        f"from prev_hashed as prev anti join cur_hashed using ({using})"
    )


def history_digest_sql(shape: HistoryShape) -> str:
    """Two order-free digests of `cur_hashed`: of keys and values (equal: a later date's stored
    changes against this date stay valid) and with the run counters too (equal: the date reads
    as it did)."""
    counters = ", ".join(identifier(c) for c in shape.counters)
    content = f"hash(h1, h2, {counters})" if counters else "h1"
    return (
        "select concat_ws('-', count(*), coalesce(sum(h1), 0), coalesce(sum(h2), 0)), "
        f"concat_ws('-', count(*), coalesce(sum({content}), 0)) from cur_hashed"
    )


def _files_or_empty(files: list[str], columns: list[tuple[str, str]]) -> str:
    if files:
        paths = ", ".join(literal(f) for f in files)
        return f"select * from read_parquet([{paths}])"
    nulls = ", ".join(f"cast(null as {t}) as {identifier(c)}" for c, t in columns)
    return f"select {nulls} where false"


def history_view_sql(
    shape: HistoryShape, added: list[str], removed: list[str], calendar: list[Any]
) -> str:
    """A query of the table at every run date of `calendar` (sorted dates), from the stored
    versions (`added` files: rows with `valid_from`) and removals (`removed` files: keys with
    `removed_on`): a version holds from its valid_from up to the first removal of its key after
    it. Counters count on by the run dates since valid_from."""
    version_columns = [(c, shape.types[c]) for c in shape.columns if c != "run_date"]
    versions = _files_or_empty(added, [*version_columns, ("valid_from", "DATE")])
    removals = _files_or_empty(
        removed, [*((k, shape.types[k]) for k in shape.keys), ("removed_on", "DATE")]
    )
    dates = ", ".join(f"(cast({literal(str(d))} as date), {i})" for i, d in enumerate(calendar))
    days = (
        f"select * from (values {dates}) as c (run_date, ordinal)"
        if calendar
        else ("select cast(null as date) as run_date, 0 as ordinal where false")
    )
    match = " and ".join(f"v.{identifier(k)} = r.{identifier(k)}" for k in shape.keys)

    def column(c: str) -> str:
        if c == "run_date":
            return "calendar.run_date"
        if c in shape.counters:
            counted = f"b.{identifier(c)} + calendar.ordinal - start.ordinal"
            return (
                f"cast(case when b.{identifier(c)} = 0 then 0 else {counted} end "
                f"as {shape.types[c]}) as {identifier(c)}"
            )
        return f"b.{identifier(c)}"

    return (
        f"with versions as ({versions}), removals as ({removals}), calendar as ({days}), "
        "bounded as (select v.*, r.removed_on as valid_to from versions as v "
        f"asof left join removals as r on {match} and r.removed_on > v.valid_from) "
        f"select {', '.join(column(c) for c in shape.columns)} from bounded as b "
        "join calendar as start on start.run_date = b.valid_from "
        "join calendar on calendar.run_date >= b.valid_from "
        "and (b.valid_to is null or calendar.run_date < b.valid_to)"
    )


def as_published_sql(shape: HistoryShape, frozen: list[str], dates: list[Any]) -> str:
    """Every date as first published: the dates changed since from their frozen first
    version (`frozen` files), the others as the main schema's view shows them."""
    columns = ", ".join(identifier(c) for c in shape.columns)
    current = f"select {columns} from main.{identifier(shape.table)}"
    if not frozen:
        return current
    paths = ", ".join(literal(f) for f in frozen)
    changed = ", ".join(f"cast({literal(str(d))} as date)" for d in dates)
    return (
        f"select {columns} from read_parquet([{paths}]) "
        f"union all {current} where run_date not in ({changed})"
    )


def empty_view_statement(shape: HistoryShape, name: str) -> str:
    """A view `name` with the table's columns and no rows (a keyframe's "date before")."""
    columns = [(c, shape.types[c]) for c in shape.columns]
    return f"create temp view {identifier(name)} as {_files_or_empty([], columns)}"


def view_statement(name: str, body: str, schema_name: str | None = None) -> str:
    """`create view` of a query the compiler wrote."""
    return f"create view {qualified(name, schema_name)} as {body}"
