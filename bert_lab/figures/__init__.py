"""What is drawn, with no Streamlit: metric points as curves (`curves`), plotly figures of runs (`run_charts`) and of
groups (`group_charts`), Vega-Lite charts for the launch page (`launch_charts`), tables of configs (`tables`), and
metric points as a CSV frame (`export`)."""
