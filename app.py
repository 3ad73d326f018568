"""NeuralBench: router and frame. Pages live in pages/; the engine in bench/ knows nothing of Streamlit."""

import streamlit as st

st.set_page_config(page_title="NeuralBench", page_icon=":material/analytics:", layout="wide")

pages = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/image.py", title="Image recognition", icon=":material/image:"),
    st.Page("pages/sentiment.py", title="Sentiment analysis", icon=":material/chat:"),
    st.Page("pages/forecast.py", title="Stock forecasting", icon=":material/show_chart:"),
    st.Page("pages/experiments.py", title="Experiments", icon=":material/science:"),
    st.Page("pages/runs.py", title="Runs", icon=":material/folder_open:"),
]
nav = st.navigation(pages)
st.sidebar.caption("NeuralBench: neural networks vs classical baselines, measured on real data.")
nav.run()
