"""Readers of the pipelines' inputs (lidar tiles; building plans in later issues)."""
