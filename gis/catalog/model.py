"""The catalog's records, :mod:`gis.records` (kept below the catalog and the backends), under their catalog name."""

from gis.records import ACTIONS, KINDS, ChangeEvent, Layer, Version, check_layer_id, utc_now

__all__ = ["ACTIONS", "KINDS", "ChangeEvent", "Layer", "Version", "check_layer_id", "utc_now"]
