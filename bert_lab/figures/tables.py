"""Tables of runs: their configs side by side (`config_diff`), the rows that differ shaded (`style_diff`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd


def config_diff(configs: Mapping[str, Mapping[str, Any]], *, only_differences: bool = False) -> pd.DataFrame:
    """Hyperparameters as rows, runs as columns (values as text), and a `differs` column."""
    fields = list(dict.fromkeys(k for c in configs.values() for k in c))
    table = pd.DataFrame(
        {label: [_fmt_value(c.get(f, "—")) for f in fields] for label, c in configs.items()},
        index=pd.Index(fields, name="hyperparameter"),
    )
    table["differs"] = table.nunique(axis=1) > 1 if len(configs) > 1 else False
    return table[table["differs"]] if only_differences else table


def style_diff(table: pd.DataFrame, color: str = "rgba(255, 196, 0, 0.35)") -> Any:
    """A Styler that shades the rows whose values differ between runs (the `differs` column of `config_diff`)."""
    differs = table["differs"]

    def shade(row: pd.Series) -> list[str]:
        return [f"background-color: {color}; font-weight: 600" if differs[row.name] else ""] * len(row)

    return table.drop(columns="differs").style.apply(shade, axis=1)


def _fmt_value(value: Any) -> str:
    if value is None:
        return "model default"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
