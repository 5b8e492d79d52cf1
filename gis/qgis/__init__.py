"""What a desktop GIS (QGIS, GDAL) sees of the city GIS: stable layer names, default styles, metadata.

- :mod:`gis.qgis.presentation`: a layer as the analyst sees it (title, abstract, licence, access, version,
  style), built by the catalog and written by each backend in the transaction that switches the version;
- :mod:`gis.qgis.styles`: default QML and SLD styles from a layer's kind and theme, and given QML files;
- :mod:`gis.qgis.links`: ``current/`` links to the current file of each raster and 3D Tiles layer.
"""
