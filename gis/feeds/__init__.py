"""The public feeds of the city GIS, built from the catalog without HTTP.

- :mod:`gis.feeds.changes`: the public change feed (events concerning the
  layers the public may see, numbered in a sequence of their own);
- :mod:`gis.feeds.downloads`: the download files of a version (GeoPackage and
  GeoJSON of a vector, the COG of a raster, one zip of a 3D Tiles folder),
  built once per version and cached with their size and sha256;
- :mod:`gis.feeds.dcat`: the DCAT-AP 3.0 graph of the public layers (rdflib),
  as JSON-LD or Turtle.

What the public may see is not decided here: every function takes the
caller's rule as ``visible(layer) -> bool`` (the server passes its one
visibility function for an anonymous caller), so that there is one rule.
"""
