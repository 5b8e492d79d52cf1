"""Data providers of the server: features, vector tiles (MVT), coverages."""
