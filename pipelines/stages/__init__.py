"""The stages of the pipelines: readers, filters and writers (see pipelines.registry)."""
