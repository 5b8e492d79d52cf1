"""3D Tiles writing: point clouds, building shells and interiors (see ARCHITECTURE)."""
