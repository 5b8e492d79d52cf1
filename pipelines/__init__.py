"""Batch pipelines: lidar and building plans to 2D layers and 3D inputs.

Also holds :mod:`pipelines.synthetic`, the generator of the synthetic
Paris-like sample district used by the tests and benchmarks.
"""
