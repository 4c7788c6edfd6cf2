"""The daily totals (``usage_daily``) of usage rows, added up in the database in the same
transaction that writes the rows: reports and budgets read a few rows a day per key and model
however many requests there were, and the totals outlive rows deleted for their age."""

from __future__ import annotations

#: the totals, each with what it adds up of a usage row
_TOTALS = {
    "requests": "count(*)",
    "errors": "sum(CASE WHEN status >= 400 THEN 1 ELSE 0 END)",
    "prompt_tokens": "sum(prompt_tokens)",
    "completion_tokens": "sum(completion_tokens)",
    "cached_tokens": "sum(cached_tokens)",
    "cache_write_tokens": "sum(cache_write_tokens)",
    "cost_nanousd": "coalesce(sum(cost_nanousd), 0)",
    "unpriced": "sum(CASE WHEN cost_nanousd IS NULL THEN 1 ELSE 0 END)",
}
#: the daily totals' columns besides the day, key and model
TOTAL_COLUMNS = tuple(_TOTALS)
#: a row's UTC day as text: SQLite keeps times as text, PostgreSQL as timestamps
_DAY = {"sqlite": "substr(created_at, 1, 10)", "postgresql": "to_char(created_at, 'YYYY-MM-DD')"}
#: held by a ledger write on PostgreSQL, so that the rows with ids above the largest before it
#: are its own (instances write one at a time; SQLite's writers do anyway)
ADVISORY_LOCK = "SELECT pg_advisory_xact_lock(7280410)"
LAST_ID = "SELECT coalesce(max(id), 0) FROM usage"


def rollup_sql(dialect: str, since_id: int) -> str:
    """Add the usage rows whose id is above ``since_id`` to their days' totals."""
    names = ", ".join(_TOTALS)
    sums = ", ".join(_TOTALS.values())
    added = ", ".join(f"{name} = usage_daily.{name} + excluded.{name}" for name in _TOTALS)
    return (
        f"INSERT INTO usage_daily (day, key_id, model, {names}) "
        f"SELECT {_DAY[dialect]}, coalesce(key_id, ''), model_requested, {sums} "
        f"FROM usage WHERE id > {int(since_id)} GROUP BY 1, 2, 3 "
        f"ON CONFLICT (day, key_id, model) DO UPDATE SET {added}"
    )
