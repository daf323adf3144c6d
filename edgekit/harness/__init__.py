"""Accuracy (compare, tolerances), input data and, later, latency: the measuring side of edgekit."""
