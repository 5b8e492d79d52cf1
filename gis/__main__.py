"""``python -m gis`` runs the ``lutece`` command line."""

from gis.cli import main

main()
