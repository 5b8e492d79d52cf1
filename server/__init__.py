"""The publication front: pygeoapi app factory, 3D Tiles endpoints, access control."""
