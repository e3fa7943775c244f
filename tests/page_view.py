"""Reading what an AppTest page shows: its charts and its text, as a person would read them."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import numpy as np
import pandas as pd
from streamlit.testing.v1 import AppTest


def figures(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def titles(at: AppTest) -> list[str]:
    """The titles of every chart: plotly figures, then Vega-Lite charts (the launch page's preview)."""
    vega = [json.loads(chart.proto.spec).get("title", "") for chart in at.get("vega_lite_chart")]
    return [fig["layout"].get("title", {}).get("text", "") for fig in figures(at)] + vega


def vega_data(at: AppTest, title: str) -> pd.DataFrame:
    """The data of the Vega-Lite chart titled `title` (its layers share one dataset)."""
    from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

    [chart] = [c for c in at.get("vega_lite_chart") if json.loads(c.proto.spec).get("title") == title]
    [dataset] = chart.proto.datasets
    return convert_arrow_bytes_to_pandas_df(dataset.data.data)


def array(value: Any) -> np.ndarray:
    """A plotly JSON array (plain list, or base64 `bdata` with a `dtype`)."""
    if isinstance(value, dict):
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
    return np.asarray(value)


def read(elements: Any) -> str:
    """What a person reads: the elements' markdown with its backslash escapes resolved."""
    return re.sub(r"\\(.)", r"\1", "\n".join(str(e.value) for e in elements))
