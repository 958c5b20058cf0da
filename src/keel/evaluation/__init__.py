"""Model evaluation: metrics overall and per slice, fairness, plots, validation gates."""
