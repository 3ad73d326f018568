"""NeuralBench: router and frame. Pages live in pages/; the engine in bench/ knows nothing of Streamlit."""

import streamlit as st

from pages.ui import job_executor

# Material icons: emoji show as empty boxes in Debian's Chromium (no colour emoji font)
st.set_page_config(page_title="NeuralBench", page_icon=":material/monitoring:", layout="wide")

pages = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/image.py", title="Image recognition", icon=":material/image:"),
]
nav = st.navigation(pages)
st.sidebar.caption("NeuralBench: neural networks vs classical baselines, measured on real data.")
job_executor()  # starts the training workers' forkserver in the background, so the first Train starts at once
nav.run()
