import streamlit as st

st.title("BERT Lab")
st.info("The lab is being built. Use `python -m bert_lab train --help` meanwhile.")
