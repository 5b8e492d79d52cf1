"""The delivery route families, for the leak sweep: every path here, for a layer the caller may not see,
must answer byte for byte as for a layer that does not exist.

Each entry: (family, kinds of layer it serves, path template). ``{id}`` is the layer id, ``{sha}`` the
current version's sha256. The leak sweep formats each template with a non-open layer's id (and sha), and
with a non-existent id, and compares the two answers.
"""

DELIVERY_ROUTES = [
    ("3dtiles", ("pointcloud-3dtiles", "mesh-3dtiles"), "/collections/{id}/3dtiles"),
    ("3dtiles", ("pointcloud-3dtiles", "mesh-3dtiles"), "/collections/{id}/3dtiles/{sha}/tileset.json"),
    ("3dtiles", ("pointcloud-3dtiles", "mesh-3dtiles"), "/collections/{id}/3dtiles/{sha}/../../catalog.gpkg"),
    ("vector-tiles", ("vector",), "/collections/{id}/tiles"),
    ("vector-tiles", ("vector",), "/collections/{id}/tiles/WebMercatorQuad"),
    ("vector-tiles", ("vector",), "/collections/{id}/tiles/WebMercatorQuad/16/22550/33198"),
    ("coverages", ("raster",), "/collections/{id}/coverage"),
    ("coverages", ("raster",), "/collections/{id}/coverage?bbox=1,2,3"),
    ("coverages", ("raster",), "/collections/{id}/map?width=10"),
    ("cityjson", ("cityjson",), "/collections/{id}/cityjson"),
    ("cityjson", ("cityjson",), "/collections/{id}"),
    ("records", ("vector", "raster", "pointcloud-3dtiles", "mesh-3dtiles", "cityjson"),
     "/collections/catalog_records/items/{id}"),
]
