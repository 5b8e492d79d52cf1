// The 2D map (MapLibre GL JS): vector layers from the server's vector tiles, rasters from its map endpoint
// as map tiles, a click shows a feature's attributes.
import { authHeaders } from "./api.js";

let maplibre = null;
const PALETTE = ["#c0392b", "#2471a3", "#229954", "#d68910", "#7d3c98", "#17a589", "#a04000", "#2e4053"];
const BACKGROUND = "#eef1f3";

export function colourOf(layer, layers) {
  return PALETTE[layers.indexOf(layer) % PALETTE.length];
}

export async function createMap(container, layers, state, onFeature) {
  maplibre = await import(`${window.LUTECE_VIEWER.maplibre}/maplibre-gl.mjs`);
  const map = new maplibre.Map({
    container, attributionControl: false, hash: false, maxPitch: 70,
    style: { version: 8, sources: {}, layers: [{ id: "background", type: "background",
                                                 paint: { "background-color": BACKGROUND } }] },
    transformRequest: (url) => (url.startsWith(location.origin) ? { url, headers: authHeaders() } : { url }),
    ...initialView(state, layers),
  });
  map.addControl(new maplibre.NavigationControl(), "top-right");
  map.addControl(new maplibre.ScaleControl({ unit: "metric" }), "bottom-right");
  await new Promise((resolve) => map.once("load", resolve));
  for (const layer of layers.filter((l) => l.kind === "raster")) addRaster(map, layer);
  for (const layer of layers.filter((l) => l.kind === "vector")) addVector(map, layer, colourOf(layer, layers));
  map.on("click", (event) => {
    const ids = layers.filter((l) => l.kind === "vector").flatMap((l) => styleIds(l));
    const [feature] = map.queryRenderedFeatures(event.point, { layers: ids.filter((id) => map.getLayer(id)) });
    onFeature(feature ? { layer: feature.source, properties: feature.properties } : null);
  });
  return map;
}

function initialView(state, layers) {
  const parts = (state.map || "").split("/").map(Number);
  if (parts.length >= 3 && parts.every(Number.isFinite)) {
    return { zoom: parts[0], center: [parts[2], parts[1]], bearing: parts[3] || 0, pitch: parts[4] || 0 };
  }
  const bounds = unionExtent(layers);
  return bounds ? { bounds, fitBoundsOptions: { padding: 20 } } : { center: [2.35, 48.85], zoom: 12 };
}

export function unionExtent(layers) {
  const boxes = layers.map((l) => l.extent).filter(Boolean);
  if (!boxes.length) return null;
  return [Math.min(...boxes.map((b) => b[0])), Math.min(...boxes.map((b) => b[1])),
          Math.max(...boxes.map((b) => b[2])), Math.max(...boxes.map((b) => b[3]))];
}

export function mapView(map) {
  const c = map.getCenter();
  return [map.getZoom().toFixed(2), c.lat.toFixed(6), c.lng.toFixed(6), map.getBearing().toFixed(1),
          map.getPitch().toFixed(1)].join("/");
}

function styleIds(layer) {
  return layer.kind === "vector" ? [`${layer.id}:fill`, `${layer.id}:line`, `${layer.id}:circle`] : [`${layer.id}:raster`];
}

function addRaster(map, layer) {
  const bbox = "bbox={bbox-epsg-3857}&bbox-crs=http://www.opengis.net/def/crs/EPSG/0/3857";
  map.addSource(layer.id, { type: "raster", tileSize: 256, ...(layer.extent ? { bounds: layer.extent } : {}),
                            tiles: [`${layer.map}?f=png&width=256&height=256&${bbox}`] });
  map.addLayer({ id: `${layer.id}:raster`, type: "raster", source: layer.id, paint: { "raster-opacity": 0.85 } });
}

function addVector(map, layer, colour) {
  map.addSource(layer.id, { type: "vector", tiles: [layer.tiles], minzoom: layer.minzoom, maxzoom: layer.maxzoom,
                            ...(layer.extent ? { bounds: layer.extent } : {}) });
  const common = { source: layer.id, "source-layer": layer.sourceLayer };
  map.addLayer({ id: `${layer.id}:fill`, type: "fill", ...common, filter: ["==", ["geometry-type"], "Polygon"],
                 paint: { "fill-color": colour, "fill-opacity": 0.45, "fill-outline-color": colour } });
  map.addLayer({ id: `${layer.id}:line`, type: "line", ...common,
                 filter: ["in", ["geometry-type"], ["literal", ["LineString", "Polygon"]]],
                 paint: { "line-color": colour, "line-width": ["case", ["==", ["geometry-type"], "Polygon"], 1, 2.5] } });
  map.addLayer({ id: `${layer.id}:circle`, type: "circle", ...common, filter: ["==", ["geometry-type"], "Point"],
                 paint: { "circle-color": colour, "circle-radius": 4, "circle-stroke-color": "#fff",
                          "circle-stroke-width": 1 } });
}

export function showLayer(map, layer, visible) {
  for (const id of styleIds(layer)) {
    if (map.getLayer(id)) map.setLayoutProperty(id, "visibility", visible ? "visible" : "none");
  }
}

export function zoomTo(map, layer) {
  if (layer.extent) map.fitBounds(layer.extent, { padding: 30 });
}
