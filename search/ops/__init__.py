"""Running for real: stores and URIs, retries, signals, workers and presence, status."""
