"""Learned stand-ins for slow measurements: the accuracy predictor, and the latency / energy cost
predictor with its features and training data."""
