#!/usr/bin/env bash
# Installs the Debian packages Lutèce needs at run time, only those missing,
# so that a second run does nothing. Called by the Makefile; runs as root.
set -euo pipefail

packages=(
    libusb-1.0-0   # open3d loads libusb at import time
    postgresql-15            # the PostGIS backend's tests start a throw-away cluster (tests/gis/postgis_server.py)
    postgresql-15-postgis-3  # ... with the postgis extension
    wrk                      # benchmarks/bench_server.py: the HTTP load generator
    proj-data                # EGM96's geoid grid (egm96_15.gtx): 3D Tiles need ellipsoidal heights (tiles/geo.py)
    libsqlite3-mod-spatialite  # benchmarks/bench_server.py: the stock pygeoapi SQLiteGPKG provider loads it
    chromium                 # the web viewer's tests drive a real headless browser (Python playwright, no download)
    gdal-bin                 # tests/gis/test_qgis_names.py: ogr2ogr reads the PostGIS views (GDAL's PostgreSQL driver)
)

# Debian's own Python needs python3-venv for `python3.11 -m venv` (ensurepip).
python=${PYTHON:-python3.11}
if command -v "$python" >/dev/null && ! "$python" -c "import ensurepip, venv" 2>/dev/null; then
    packages+=(python3-venv)
fi

# npm installs the Khronos glTF validator the tests run (Makefile); Debian's npm where there is none.
if ! command -v npm >/dev/null; then
    packages+=(npm)
fi

missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "Error: missing system packages: ${missing[*]}; run 'sudo apt-get install ${missing[*]}' or run make as root." >&2
    exit 1
fi
echo "Installing system packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
