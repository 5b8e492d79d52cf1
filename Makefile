# Lutèce: `make demo` and `make test` each do all of their own set-up.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
# The stamp is rebuilt when the dependencies change, so a second run installs nothing.
STAMP  := $(VENV)/.installed
# The Khronos glTF validator (npm) that the tests run on every .glb the tiler writes.
GLTF_VALIDATOR := tests/tiles/gltf_validator
# The web viewer's browser libraries (maplibre-gl, cesium), from npm, copied where the server serves them.
VIEWER_LIBS := build/viewer/lib/.installed

.PHONY: all setup demo test sample clean viewer-shots

all: test

setup: $(STAMP) $(VIEWER_LIBS)

$(STAMP): pyproject.toml .ci/system-deps.sh $(GLTF_VALIDATOR)/package-lock.json
	PYTHON=$(PYTHON) bash .ci/system-deps.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade pip
	$(BIN)/python -m pip install -qq -e '.[test]'
	npm ci --silent --no-audit --no-fund --prefix $(GLTF_VALIDATOR)
	touch $(STAMP)

$(VIEWER_LIBS): server/viewer/package-lock.json server/viewer/install_libraries.sh .ci/system-deps.sh
	PYTHON=$(PYTHON) bash .ci/system-deps.sh
	bash server/viewer/install_libraries.sh $(dir $@)
	touch $@

DEMO     := build/demo
PRODUCTS := $(DEMO)/products
TILESETS := $(DEMO)/tilesets
BUILDINGS := $(DEMO)/buildings
INTERIORS := $(DEMO)/interiors
DISTRICT := $(DEMO)/district/manifest.json
CITY     := $(BIN)/lutece --config $(DEMO)/lutece.yml
# `make demo` ends serving the city in the foreground; `SERVE=0 make demo` stops after publishing.
SERVE    ?= 1
PORT     ?= 5000
URL      := http://127.0.0.1:$(PORT)
# the open-data portal's mirror, following the server in watch mode while `make demo` serves
MIRROR   := $(DEMO)/mirror

demo: $(STAMP) $(VIEWER_LIBS) $(DISTRICT)
	$(BIN)/lutece doctor
	$(BIN)/lutece pipeline run lidar-to-2d --input $(DEMO)/district/district.laz --output $(PRODUCTS)
	printf 'store:\n  path: $(DEMO)/city\n' > $(DEMO)/lutece.yml
	$(CITY) publish $(PRODUCTS)/dtm_0.5m.tif --layer dtm --licence etalab-2.0 --access open --theme elevation --title "Modèle numérique de terrain 0,5 m"
	$(CITY) publish $(PRODUCTS)/dsm_0.5m.tif --layer dsm --licence etalab-2.0 --access open --theme elevation --title "Modèle numérique de surface 0,5 m"
	$(CITY) publish $(PRODUCTS)/ndsm_0.5m.tif --layer ndsm --licence etalab-2.0 --access open --theme elevation --title "Hauteur du sursol 0,5 m"
	$(CITY) publish $(PRODUCTS)/hillshade_1m.tif --layer hillshade --licence etalab-2.0 --access open --theme elevation --title "Ombrage 1 m"
	$(CITY) publish $(PRODUCTS)/layers.gpkg --source-layer contours --layer contours --licence etalab-2.0 --access open --theme elevation --title "Courbes de niveau 1 m"
	$(CITY) publish $(PRODUCTS)/layers.gpkg --source-layer footprints --layer buildings --licence ODbL-1.0 --access open --theme buildings --title "Emprises des bâtiments"
	$(CITY) publish $(PRODUCTS)/layers.gpkg --source-layer trees --layer trees --licence restricted --access shared --theme vegetation --title "Arbres détectés (partenaires)"
	$(BIN)/lutece pipeline run lidar-to-3dtiles --input $(DEMO)/district/district.laz --output $(TILESETS) --stage.streets.streets=$(DEMO)/district/district.gpkg
	$(CITY) publish $(TILESETS)/pointcloud_streets --layer streets-3d --kind pointcloud-3dtiles --licence etalab-2.0 --access open --theme streets --title "Rues en 3D (nuage de points lidar)"
	$(CITY) publish $(TILESETS)/pointcloud_terrain --layer terrain-3d --kind pointcloud-3dtiles --licence etalab-2.0 --access open --theme elevation --title "Terrain en 3D (sol et eau, 1 point par m2)"
	$(BIN)/lutece pipeline run lidar-to-buildings --input $(DEMO)/district/district.laz --output $(BUILDINGS) --stage.buildings.footprints=$(DEMO)/district/district.gpkg
	$(CITY) publish $(BUILDINGS)/buildings_3dtiles --layer buildings-3d --kind mesh-3dtiles --licence etalab-2.0 --access open --theme buildings --title "Bâtiments en 3D (LoD2.2, attributs par bâtiment)"
	$(CITY) publish $(BUILDINGS)/buildings.city.json --layer buildings-cityjson --licence ODbL-1.0 --access open --theme buildings --title "Bâtiments 3D (CityJSON 2.0)"
	$(CITY) publish $(BUILDINGS)/buildings.gpkg --source-layer buildings --layer buildings-lod --licence etalab-2.0 --access open --theme buildings --title "Bâtiments reconstruits : hauteurs, toits, LoD"
	$(BIN)/lutece pipeline run plans-to-interiors --input $(DEMO)/district/hotel-de-ville.ifc --output $(INTERIORS)
	$(CITY) publish $(INTERIORS)/interior_open --layer hotel-de-ville-interior --kind mesh-3dtiles --licence etalab-2.0 --access open --theme buildings --title "Hôtel de Ville : intérieur par étage"
	$(CITY) publish $(INTERIORS)/interior_full --layer hotel-de-ville-interior-full --kind mesh-3dtiles --licence restricted --access shared --theme buildings --title "Hôtel de Ville : intérieur par étage, complet (partenaires)"
	for pair in rooms:pièces walls:murs doors:portes; do layer=$${pair%%:*}; name=$${pair#*:}; \
	  $(CITY) publish $(INTERIORS)/indoor_open.gpkg --source-layer $$layer --layer hotel-de-ville-$$layer --licence etalab-2.0 --access open --theme buildings --title "Hôtel de Ville : $$name par niveau" && \
	  $(CITY) publish $(INTERIORS)/indoor_full.gpkg --source-layer $$layer --layer hotel-de-ville-$$layer-full --licence restricted --access shared --theme buildings --title "Hôtel de Ville : $$name par niveau, complet (partenaires)" || exit 1; \
	done
	$(CITY) layers list
	@echo "QGIS: open $(DEMO)/city/catalog.gpkg (buildings, contours, trees, ... styled, always current); rasters: $(DEMO)/city/current/"
	@echo "Products and run report: $(PRODUCTS)/report.html; 3D Tiles: $(TILESETS); buildings (3D Tiles, CityJSON, layer): $(BUILDINGS); interiors (3D Tiles and indoor layers, open and full): $(INTERIORS); the city GIS: $(DEMO)/city"
	@if [ "$(SERVE)" = "0" ]; then exit 0; fi; \
	echo ""; \
	echo "Serving the demo city (Ctrl-C stops it):"; \
	echo "  web viewer (2D/3D)    $(URL)/viewer"; \
	echo "  landing page          $(URL)/"; \
	echo "  buildings (features)  $(URL)/collections/buildings/items"; \
	echo "  buildings (CityJSON)  $(URL)/collections/buildings-cityjson/cityjson"; \
	echo "  town hall, 2nd floor  $(URL)/collections/hotel-de-ville-rooms/items?level=2"; \
	echo "  terrain (coverage)    $(URL)/collections/dtm/coverage?f=png"; \
	echo "  OpenAPI document      $(URL)/openapi"; \
	echo "  QGIS/GDAL             ogrinfo OAPIF:$(URL)"; \
	echo "  DCAT-AP catalogue     $(URL)/catalog  (Turtle: $(URL)/catalog?f=ttl)"; \
	echo "  change feed           $(URL)/changes?since=0"; \
	echo "  open-data mirror      $(MIRROR)/index.html (lutece mirror --watch beside the server: a publication appears within seconds)"; \
	(sleep 3; exec $(BIN)/lutece mirror --source $(URL) --target $(MIRROR) --watch --interval 2) & \
	exec $(CITY) serve --host 127.0.0.1 --port $(PORT) --workers 2

# The demo's district, generated again only when the generator changes.
$(DISTRICT): $(STAMP) $(wildcard pipelines/synthetic/*.py)
	$(BIN)/lutece sample generate $(DEMO)/district --overwrite

test: $(STAMP) $(VIEWER_LIBS)
	$(BIN)/python -m pytest

# Screenshots of the viewer (2D and 3D) on the demo city, into build/ (README shows two of them).
viewer-shots: $(STAMP) $(VIEWER_LIBS)
	SERVE=0 $(MAKE) demo
	$(BIN)/python benchmarks/viewer_shots.py --config $(DEMO)/lutece.yml --out build/viewer-shots

# Regenerates the committed sample district (deterministic: same seed, same files).
sample: $(STAMP)
	$(BIN)/lutece sample generate sample_data/district --overwrite

clean:
	rm -rf build .pytest_cache
