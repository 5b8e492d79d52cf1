"""IFC (IFC2x3, IFC4) to an :class:`~pipelines.algorithms.interior.Interior`: storeys, rooms and elements.

``reader.read_ifc`` opens and checks the file (:mod:`.source`), finds where it stands
(:mod:`.georef`), reads storeys and attributes (:mod:`.elements`), skips what
is known to break the geometry kernel (:mod:`.checks`), triangulates the rest
with ifcopenshell's iterator (:mod:`.geometry`) and cuts the plan outlines
(:mod:`pipelines.algorithms.sections`). An element that fails is listed with
its GlobalId and the reason; the others are kept.

The package's ``__init__`` imports nothing: the geometry runs in a child
interpreter (``python -m pipelines.algorithms.ifc.geometry``) that should load
ifcopenshell and numpy only, not pandas, geopandas and pyproj.
"""
