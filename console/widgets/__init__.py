"""Console widgets: one module each."""
