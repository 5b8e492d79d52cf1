"""open3d loads without its plotly/dash visualiser, and works."""

import subprocess
import sys

CHECK = """
import sys
from pipelines.algorithms.lean_open3d import o3d
assert "plotly" not in sys.modules and "dash" not in sys.modules, "the web visualiser was imported"
cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector([[0, 0, 0], [0.5, 0, 0], [1, 0, 0], [50, 0, 0]]))
assert list(cloud.cluster_dbscan(eps=0.6, min_points=2)) == [0, 0, 0, -1]
try:
    o3d.visualization.draw_plotly([cloud])
except RuntimeError as exc:
    assert "fresh Python process" in str(exc)
else:
    raise AssertionError("draw_plotly ran")
"""


def test_open3d_without_its_web_visualiser_clusters_and_says_why_it_cannot_draw():
    result = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
