"""``lutece mirror``: the open-data portal's harvester, an HTTP client of the server's feeds.

- :mod:`gis.mirror.client`: the HTTP side (the change feed, the DCAT
  catalogue, downloads verified by sha256, resumed with ranges);
- :mod:`gis.mirror.dcat`: the datasets of a DCAT-AP catalogue (rdflib);
- :mod:`gis.mirror.state`: the mirror's state file and its journal;
- :mod:`gis.mirror.portal`: the folder a portal publishes (per-dataset
  folders, metadata, licence notices, index JSON and HTML);
- :mod:`gis.mirror.sync`: one sync, and the watch loop.

It imports nothing of ``server/``: the server is reached over HTTP only.
"""
