"""NeuralBench: router and frame. Pages live in pages/; the engine in bench/ knows nothing of Streamlit."""

import streamlit as st

st.set_page_config(page_title="NeuralBench", page_icon="📊", layout="wide")

pages = [
    st.Page("pages/home.py", title="Home", icon="🏠", default=True),
    st.Page("pages/image.py", title="Image recognition", icon="🖼️"),
    st.Page("pages/sentiment.py", title="Sentiment analysis", icon="💬"),
    st.Page("pages/forecast.py", title="Stock forecasting", icon="📈"),
    st.Page("pages/experiments.py", title="Experiments", icon="🧪"),
    st.Page("pages/runs.py", title="Runs", icon="🗂️"),
]
nav = st.navigation(pages)
st.sidebar.caption("NeuralBench: neural networks vs classical baselines, measured on real data.")
nav.run()
