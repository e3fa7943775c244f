"""The presenter view: a page read from the back of a room on a projector (1280×720). `?present=1` in the address, or
the sidebar's toggle, turns it on for the Runs, Groups and Lessons pages: large type, thick lines, knobs and tables
left out, one or two live charts filling the screen (each page decides what it leaves out; `presenting()` tells
it). The address keeps the choice, so a presenter's link opens straight into it."""

from __future__ import annotations

from collections.abc import Callable

import plotly.graph_objects as go
import streamlit as st

PARAM = "present"
KEY = "_present"
FONT_PX = 22  # chart text on a projector: readable from the back of a room at 1280×720
CHART_HEIGHT_PX = 560  # a pair of charts fills a 1280×720 screen under one line of heading
LABEL_CHARS = 34  # a run's name in a projected legend: three of them fit a chart's width at 1280 px
LINE_PX = 4
# Page text scaled up; the sidebar and Streamlit's header out of the way (the switch moves onto the page); static,
# no user text in it.
STYLE = """
<style>
  html { font-size: 21px; }
  [data-testid="stMainBlockContainer"] { padding: 0.6rem 1.2rem 1rem 1.2rem; max-width: 100%; }
  [data-testid="stHeader"], [data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"] { display: none; }
  h1, h2, h3 { font-size: 1.6rem !important; padding: 0.2rem 0 !important; }
</style>
"""


def render_toggle() -> bool:
    """The switch, kept in step with `?present=1`: in the sidebar, or on the page while presenting (the sidebar is
    hidden then). True while presenting; the page is restyled for a projector."""
    if KEY not in st.session_state:
        st.session_state[KEY] = st.query_params.get(PARAM) == "1"
    where = st.container() if st.session_state[KEY] else st.sidebar
    on = where.toggle(
        "Presenter view",
        key=KEY,
        help="Large type and charts for a projector; knobs and tables hidden. `?present=1` in the address opens it.",
    )
    if on:
        st.query_params[PARAM] = "1"
        st.markdown(STYLE, unsafe_allow_html=True)
    elif PARAM in st.query_params:
        del st.query_params[PARAM]
    return on


def choice(label: str, options: list[str], *, key: str, format_func: Callable[[str], str] = str) -> str:
    """A picker, or while presenting the choice it holds, drawn as nothing (the view shows no controls)."""
    if not presenting():
        return st.selectbox(label, options, format_func=format_func, key=key)
    held = st.session_state.get(key)
    return held if held in options else options[0]


def presenting() -> bool:
    """Whether this page is in the presenter view (`render_toggle` ran first on the page)."""
    return bool(st.session_state.get(KEY))


def projected(figure: go.Figure, *, height: int | None = None) -> go.Figure:
    """`figure` made for a projector while presenting (large type, thick lines, tall); as it was otherwise."""
    if not presenting():
        return figure
    figure.update_layout(
        font={"size": FONT_PX},
        title_font_size=FONT_PX + 4,
        legend={
            "font": {"size": FONT_PX - 2},
            "orientation": "h",
            "yanchor": "top",
            "y": -0.24,
            "xanchor": "left",
            "x": 0,
        },
        height=height or CHART_HEIGHT_PX,
        margin={"l": 70, "r": 20, "t": 60, "b": 160},
    )
    figure.update_xaxes(tickfont_size=FONT_PX - 2, title_font_size=FONT_PX)
    figure.update_yaxes(tickfont_size=FONT_PX - 2, title_font_size=FONT_PX)
    figure.update_traces(line_width=LINE_PX, selector={"type": "scatter", "mode": "lines"})
    return figure
