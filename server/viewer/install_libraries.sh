#!/usr/bin/env bash
# Installs the viewer's browser libraries from npm (the committed lockfile) and copies what a browser
# loads into DEST/NAME@VERSION (served by server/routes/viewer.py under versioned, immutable URLs).
# Only Cesium's Build/Cesium is copied (the package holds its sources and an unminified build too).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dest=${1:?usage: install_libraries.sh DEST}
dest=${dest%/}
npm ci --silent --no-audit --no-fund --ignore-scripts --prefix "$here"
version() { node -p "require('$here/node_modules/$1/package.json').version"; }
partial="$dest.partial"
rm -rf "$partial" && mkdir -p "$partial"
maplibre="$partial/maplibre-gl@$(version maplibre-gl)"
mkdir -p "$maplibre"
cp "$here"/node_modules/maplibre-gl/dist/{maplibre-gl.mjs,maplibre-gl-worker.mjs,maplibre-gl.css} "$maplibre/"
cp "$here"/node_modules/maplibre-gl/LICENSE.txt "$maplibre/"
cp -r "$here/node_modules/cesium/Build/Cesium" "$partial/cesium@$(version cesium)"
cp "$here"/node_modules/cesium/LICENSE.md "$partial/cesium@$(version cesium)/"
rm -rf "$dest" && mv "$partial" "$dest"
