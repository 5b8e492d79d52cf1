"""The synthetic Paris-like sample district: scene, lidar, vectors, town hall plans, ground truth.

``lutece sample generate`` (cli.py) drives generate.py, which draws every
output from one scene (scene.py) so that they agree by construction.
"""
