"""Streamlit code the pages share: page set-up and navigation (`page`) and live curves (`live`). The library
(`bert_lab`) has no Streamlit in it; everything here only asks it."""
