"""Paper-ready tables: `exp export`. Grouping and statistics are in expledger.export."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import BadInput, keyword
from ..models import Status, json_safe
from ..store.base import Store

REPEATED_SHOWN = 5  # groups with a repeated replicate named one by one in `warnings`


@dataclass(frozen=True)
class ExportTable:
    """One row per config, each metric as mean ± std over its runs (see expledger.export
    for the keys of `table`)."""

    table: dict

    @property
    def warnings(self) -> list[str]:
        """What a reader of the table should know: records left out, repeated replicates."""
        table, notes = self.table, []
        if table["skipped"]:
            notes.append(f"skipped {len(table['skipped'])} experiment(s) without "
                         f"{', '.join(table['metrics']) or 'metrics'}: {', '.join(table['skipped'][:10])}"
                         + (" …" if len(table["skipped"]) > 10 else ""))
        repeated = list(table["warnings"])
        if len(repeated) > REPEATED_SHOWN:  # the --json keeps every one; a terminal gets the gist
            repeated[REPEATED_SHOWN:] = [f"… and {len(repeated) - REPEATED_SHOWN} more groups with a repeated "
                                         f"{table['replicate']} (--json lists them all)"]
        return notes + repeated

    def render(self, fmt: str, *, precision: int | None = None) -> str:
        """The table as `md`, `latex`, `csv` or `json` text."""
        from ..export import render

        return render(self.table, fmt, precision=precision)

    def to_json(self) -> dict:
        return {"table": json_safe(self.table)}


def export(store: Store, *, status=(Status.SUCCESS,), where=None, group_by=None, replicate: str = "seed",
           metrics=None, lower=frozenset()) -> ExportTable:
    """Aggregate the matching experiments (default: the successful ones).

    Args:
        group_by: fields to group by (`params.model`, `task`; default: every param that
            varies, but the replicate).
        replicate: the param whose values are repeats of one config.
        metrics: the metrics to give (`metrics.acc`; default: all).
        lower: metrics where lower is better, besides the known kinds of cost.
    """
    from ..export import summarize
    from ..query import field_path

    if isinstance(where, str):
        from ..query import parse

        where = parse(where)
    names = None
    if metrics:
        columns = keyword("metrics", cli="--columns")
        paths = [field_path(m, flag=columns) for m in metrics]
        if any(path[0] != "metrics" or len(path) != 2 for path in paths):
            raise BadInput("{0}: export columns are metrics, e.g. metrics.acc,metrics.wer", arguments=(columns,))
        names = [path[1] for path in paths]
    groups = [field_path(g, flag="group_by") for g in group_by] if group_by else None
    store.reap_once()
    found = store.search(status=status, where=where, sort="id", limit=None)
    return ExportTable(summarize(found, group_by=groups, replicate=replicate, metrics=names, lower=frozenset(lower)))
