"""The presenter view: a page read from the back of a room on a projector (1280×720). `?present=1` in the address, or
the sidebar's toggle, turns it on for the Runs, Groups and Lessons pages: large type, thick lines, knobs and tables
left out, one or two live charts filling the screen (each page decides what it leaves out; `presenting()` tells
it). The address keeps the choice, so a presenter's link opens straight into it."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

PARAM = "present"
KEY = "_present"
FONT_PX = 22  # chart text on a projector: readable from the back of a room at 1280×720
CHART_HEIGHT_PX = 470  # one chart of a pair fills the screen's height under the title at 1280×720
LINE_PX = 4
# Page text scaled up and the chrome (Streamlit's header and toolbar) out of the way; static, no user text in it.
STYLE = """
<style>
  html { font-size: 21px; }
  [data-testid="stMainBlockContainer"] { padding-top: 1.2rem; max-width: 100%; }
  [data-testid="stHeader"] { display: none; }
  h1 { font-size: 2.2rem !important; padding-top: 0 !important; }
  h2, h3 { font-size: 1.7rem !important; }
</style>
"""


def render_toggle() -> bool:
    """The sidebar's switch, kept in step with `?present=1`; True while presenting (then the page is restyled)."""
    if KEY not in st.session_state:
        st.session_state[KEY] = st.query_params.get(PARAM) == "1"
    on = st.sidebar.toggle(
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
        legend={"font": {"size": FONT_PX - 2}},
        height=height or CHART_HEIGHT_PX,
        margin={"l": 70, "r": 20, "t": 70, "b": 60},
    )
    figure.update_xaxes(tickfont_size=FONT_PX - 2, title_font_size=FONT_PX)
    figure.update_yaxes(tickfont_size=FONT_PX - 2, title_font_size=FONT_PX)
    figure.update_traces(line_width=LINE_PX, selector={"type": "scatter", "mode": "lines"})
    return figure
