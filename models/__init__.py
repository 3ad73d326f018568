"""What is compared: torch modules, their estimator wrapper, and classical baselines."""
