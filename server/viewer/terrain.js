// The 3D view's terrain from the city's DTM, read as any OGC API Coverages client would: the coverage of the
// tile's box in EPSG:4979 (heights above the WGS84 ellipsoid, the server adding the geoid the tilesets were
// placed with) as CoverageJSON, one sample per heightmap post. No DTM published: the ellipsoid stays.
import { ELLIPSOIDAL } from "./api.js";

const POSTS = 33;  // heightmap posts per tile side
const FIRST_LEVEL = 13;  // tiles of 0.022 degree (2.4 km) or less: coarser ones are flat at the DTM's mean height

async function heights(url, resource, [west, south, east, north], posts) {
  const query = `f=covjson&crs=${ELLIPSOIDAL}&scale-size=x(${posts}),y(${posts})&bbox=${west},${south},${east},${north}`;
  const document = await resource(`${url}?${query}`).fetchJson();
  return document.ranges.band1.values;  // row-major from the north-west, null where the DTM has no value
}

// The box whose pixel centres are the heightmap's posts (Cesium's posts lie on the tile's edges).
function postBox(Cesium, rectangle, posts) {
  const [west, south, east, north] = [rectangle.west, rectangle.south, rectangle.east, rectangle.north]
    .map((r) => Cesium.Math.toDegrees(r));
  const dx = (east - west) / (posts - 1) / 2;
  const dy = (north - south) / (posts - 1) / 2;
  return [west - dx, south - dy, east + dx, north + dy];
}

export async function terrainProvider(Cesium, layer, resource) {
  if (!layer.extent) return new Cesium.EllipsoidTerrainProvider();
  let mean;
  try {
    const overview = (await heights(layer.terrain, resource, layer.extent, 8)).filter((v) => v !== null);
    mean = overview.reduce((a, b) => a + b, 0) / overview.length;
  } catch (error) {
    console.warn(`terrain ${layer.id} left out: ${error.message}`);
  }
  if (!Number.isFinite(mean)) return new Cesium.EllipsoidTerrainProvider();
  const scheme = new Cesium.GeographicTilingScheme();
  const extent = Cesium.Rectangle.fromDegrees(...layer.extent);
  const flat = new Float32Array(POSTS * POSTS).fill(mean);
  return new Cesium.CustomHeightmapTerrainProvider({
    width: POSTS, height: POSTS, tilingScheme: scheme,
    callback: async (x, y, level) => {
      const rectangle = scheme.tileXYToRectangle(x, y, level);
      if (level < FIRST_LEVEL || !Cesium.Rectangle.intersection(rectangle, extent)) return flat;
      try {
        const values = await heights(layer.terrain, resource, postBox(Cesium, rectangle, POSTS), POSTS);
        return Float32Array.from(values, (v) => (v === null ? mean : v));
      } catch (error) {
        console.warn(`terrain tile ${level}/${x}/${y}: ${error.message}`);
        return flat;
      }
    },
  });
}
