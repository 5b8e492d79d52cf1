"""Routes of our own next to pygeoapi's: 3D Tiles files, vector tiles, coverages and maps, the catalog's records.

Each family is a :class:`werkzeug.routing.Map` of rules with their handlers
(:mod:`server.routes.delivery` gathers them); every handler asks the one
visibility rule (:mod:`server.access`, through :class:`server.routes.http.Delivery`)
before it touches a layer, so that a layer the caller may not see answers
exactly as one that does not exist.
"""
