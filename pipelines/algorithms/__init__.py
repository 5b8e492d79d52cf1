"""Pure algorithms of the pipelines: arrays and rasters in, arrays, rasters and GeoDataFrames out."""
