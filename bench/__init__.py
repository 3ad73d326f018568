"""NeuralBench engine: registry, one training loop, one evaluation path, run store, CLI.

No Streamlit import anywhere in this package.
"""
