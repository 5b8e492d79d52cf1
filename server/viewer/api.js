// The server's public endpoints, as any OGC API / 3D Tiles client reads them: the layer list comes from
// /collections and each layer's kind from its links, so a new layer appears without a change here.
import { getKey } from "./state.js";

const VECTOR_TILES = "tilesets-vector";
const MAP = "http://www.opengis.net/def/rel/ogc/1.0/map";
const TILES_3D = "application/json+3dtiles";
const COVERAGE = "http://www.opengis.net/def/rel/ogc/1.0/coverage";
const COVERAGE_JSON = "application/prs.coverage+json";
export const ELLIPSOIDAL = "http://www.opengis.net/def/crs/EPSG/0/4979";  // lon, lat, height above the ellipsoid

export function authHeaders() {
  const key = getKey();
  return key ? { "X-API-Key": key } : {};
}

// The server's links name its configured host; the viewer asks the origin it was loaded from.
export function sameOrigin(href) {
  const url = new URL(href, location.href);
  return `${location.origin}${url.pathname}${url.search}`;
}

export async function getJSON(href) {
  const response = await fetch(sameOrigin(href), { headers: { Accept: "application/json", ...authHeaders() } });
  if (!response.ok) throw new Error(`${response.status} ${new URL(href, location.href).pathname}`);
  return response.json();
}

function link(collection, test) {
  return (collection.links || []).find(test);
}

function licenceOf(collection, document) {
  const found = link(collection, (l) => l.rel === "license" && /^https?:/.test(l.href));
  const id = document?.license || "";
  const title = found?.title || id;
  const odbl = /odbl/i.test(`${title} ${found?.href || ""} ${id}`);
  return { title, href: found?.href || null, odbl };
}

function extentOf(document) {
  const bbox = document?.extent?.spatial?.bbox?.[0];
  return bbox && bbox[0] > -180 + 1e-9 ? bbox.slice(0, 4) : null;
}

// A raster whose coverage answers heights above the ellipsoid (crs EPSG:4979) is a terrain for the 3D view.
function terrainOf(collection) {
  const coverage = link(collection, (l) => l.rel === COVERAGE && l.type === COVERAGE_JSON);
  if (!coverage || !(collection.crs || []).includes(ELLIPSOIDAL)) return null;
  const url = new URL(sameOrigin(coverage.href));
  url.search = "";
  return url.href;
}

// One layer of the listing, as the viewer draws it (null: nothing a map shows, e.g. the records collection).
async function describe(collection) {
  const base = { id: collection.id, title: collection.title || collection.id, extent: extentOf(collection) };
  if (collection.itemType === "record") return null;
  const vector = link(collection, (l) => l.rel.endsWith(VECTOR_TILES));
  if (vector) {
    const tilesets = await getJSON(vector.href);
    const summary = tilesets.tilesets[0];
    const tileset = await getJSON(summary.links.find((l) => l.rel === "self").href);
    const template = summary.links.find((l) => l.rel === "item").href;
    return { ...base, kind: "vector", licence: licenceOf(collection),
             tiles: sameOrigin(template).replace(/%7B/gi, "{").replace(/%7D/gi, "}")
               .replace("{tileMatrix}", "{z}").replace("{tileRow}", "{y}").replace("{tileCol}", "{x}"),
             sourceLayer: tileset.layers?.[0]?.id || collection.id,
             minzoom: tileset.minzoom ?? 0, maxzoom: tileset.maxzoom ?? 22 };
  }
  const map = link(collection, (l) => l.rel === MAP && l.type === "image/png");
  if (map) {
    const url = new URL(sameOrigin(map.href));
    url.search = "";
    return { ...base, kind: "raster", licence: licenceOf(collection), map: url.href, terrain: terrainOf(collection) };
  }
  const self = link(collection, (l) => l.rel === "self" && (l.type || "").includes("json"));
  if (!self) return null;
  const document = await getJSON(self.href);  // a 3D container names its tileset in its content
  const tileset = [...(document.content || []), ...(document.links || [])].find((l) => l.type === TILES_3D);
  if (!tileset) return null;
  return { ...base, kind: "3dtiles", licence: licenceOf(collection, document), extent: extentOf(document),
           tileset: sameOrigin(tileset.href) };
}

export async function loadLayers() {
  const listing = await getJSON("/collections?f=json");
  const described = await Promise.all((listing.collections || []).map((c) => describe(c).catch((error) => {
    console.warn(`layer ${c.id} left out: ${error.message}`);
    return null;
  })));
  return described.filter(Boolean);
}
