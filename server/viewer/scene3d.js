// The 3D scene (CesiumJS, no ion token, no remote imagery): 3D Tiles layers as the server serves them, the
// city's rasters draped on the terrain (terrain.js: the DTM's heights above the ellipsoid, else the ellipsoid), point clouds coloured by class, height or intensity, a click reads a
// feature's metadata (EXT_structural_metadata), and a storey picker styles features on their `level`.
import { authHeaders } from "./api.js";
import { terrainProvider } from "./terrain.js";

// ASPRS classes (gis/asprs.py) as the lidar's usual colours; the legend names them (i18n.js: class_N).
export const CLASS_COLOURS = { 1: "#b3b3b3", 2: "#a0522d", 3: "#9acd32", 4: "#3cb043", 5: "#1e6b1e", 6: "#e04a3a",
                               7: "#ff00ff", 9: "#3a7bd5", 17: "#f4d03f", 18: "#ff00ff" };

let Cesium = null;

function loadCesium() {
  if (window.Cesium) return Promise.resolve(window.Cesium);
  window.CESIUM_BASE_URL = `${window.LUTECE_VIEWER.cesium}/`;
  const style = document.createElement("link");
  style.rel = "stylesheet";
  style.href = `${window.LUTECE_VIEWER.cesium}/Widgets/widgets.css`;
  document.head.append(style);
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = `${window.LUTECE_VIEWER.cesium}/Cesium.js`;
    script.onload = () => resolve(window.Cesium);
    script.onerror = () => reject(new Error("Cesium did not load"));
    document.head.append(script);
  });
}

function resource(url) {
  return new Cesium.Resource({ url, headers: authHeaders() });
}

export class Scene {
  static async create(container, layers, state, onFeature) {
    Cesium = await loadCesium();
    Cesium.Ion.defaultAccessToken = "";
    const scene = new Scene(container, layers, state, onFeature);
    await scene.addLayers();
    return scene;
  }

  constructor(container, layers, state, onFeature) {
    this.layers = layers;
    this.state = state;
    this.tilesets = new Map();  // layer id -> Cesium3DTileset
    this.imagery = new Map();  // layer id -> ImageryLayer
    this.viewer = new Cesium.Viewer(container, {
      baseLayer: false, baseLayerPicker: false, geocoder: false, homeButton: false, sceneModePicker: false,
      navigationHelpButton: false, animation: false, timeline: false, fullscreenButton: false, infoBox: false,
      selectionIndicator: false, msaaSamples: 1,
    });
    const scene = this.viewer.scene;
    scene.globe.baseColor = Cesium.Color.fromCssColorString("#dfe4e8");
    scene.backgroundColor = Cesium.Color.fromCssColorString("#cfd8dc");
    scene.skyBox.show = false;
    scene.skyAtmosphere.show = false;
    scene.globe.showGroundAtmosphere = false;
    scene.fog.enabled = false;
    this.handler = new Cesium.ScreenSpaceEventHandler(scene.canvas);
    this.handler.setInputAction((click) => onFeature(this.pick(click.position)),
                                Cesium.ScreenSpaceEventType.LEFT_CLICK);
  }

  async addLayers() {
    const terrain = this.layers.find((l) => l.kind === "raster" && l.terrain);
    if (terrain) this.viewer.terrainProvider = await terrainProvider(Cesium, terrain, resource);
    for (const layer of this.layers.filter((l) => l.kind === "raster")) {
      const [w, s, e, n] = layer.extent || [-180, -90, 180, 90];
      const provider = new Cesium.UrlTemplateImageryProvider({
        url: resource(`${layer.map}?f=png&width=256&height=256&bbox={westDegrees},{southDegrees},{eastDegrees},{northDegrees}`),
        tilingScheme: new Cesium.GeographicTilingScheme(), rectangle: Cesium.Rectangle.fromDegrees(w, s, e, n),
        tileWidth: 256, tileHeight: 256, minimumLevel: 0, maximumLevel: 19,
      });
      this.imagery.set(layer.id, this.viewer.imageryLayers.addImageryProvider(provider));
    }
    await Promise.all(this.layers.filter((l) => l.kind === "3dtiles").map((layer) => this.openTileset(layer)));
    if (!this.setCamera(this.state.cam)) this.home();
  }

  async openTileset(layer, pointCloud = false) {
    const tileset = await Cesium.Cesium3DTileset.fromUrl(resource(layer.tileset), { maximumScreenSpaceError: 12 });
    tileset.lutece = { layer, pointCloud, storeys: tileset.asset?.extras?.lutece?.storeys || null,
                       colour: this.state.colour };
    tileset.tileLoad.addEventListener((tile) => {
      if (!tileset.lutece.pointCloud && tile.content?.pointsLength > 0) {
        tileset.lutece.pointCloud = true;
        this.styleTileset(tileset);
        this.onPointCloud?.();
      }
    });
    tileset.show = this.isVisible(layer.id);
    this.viewer.scene.primitives.add(tileset);
    this.tilesets.set(layer.id, tileset);
    this.styleTileset(tileset);
    return tileset;
  }

  storeys() {
    for (const tileset of this.tilesets.values()) {
      if (tileset.lutece.storeys && tileset.show) return tileset.lutece.storeys;
    }
    return null;
  }

  styleTileset(tileset) {
    if (tileset.lutece.pointCloud) {
      tileset.style = new Cesium.Cesium3DTileStyle({ color: this.pointColour(tileset), pointSize: 3 });
    } else if (tileset.lutece.storeys) {
      const storey = this.state.storey;
      const show = storey === "all" || storey === "shell" ? "true" : `\${level} === ${Number(storey)}`;
      tileset.style = new Cesium.Cesium3DTileStyle({ show });
      tileset.show = storey !== "shell" && this.isVisible(tileset.lutece.layer.id);
    }
  }

  // Point colours from the lidar's per-point attributes (EXT_structural_metadata property attributes).
  // Evaluated in the point shader; a point cloud's features (its classes) carry no property table, so the
  // per-feature evaluation meets undefined values, which the guards below let through.
  pointColour(tileset) {
    const mode = this.state.colour;
    if (mode === "intensity") {
      return { conditions: [["${intensity} === undefined", "color('#dddddd')"],
                            ["true", "hsl(0.0, 0.0, clamp(${intensity} / 1500.0, 0.08, 1.0))"]] };
    }
    if (mode === "height") {
      const centre = tileset.boundingSphere.center;
      const up = Cesium.Ellipsoid.WGS84.geodeticSurfaceNormal(centre, new Cesium.Cartesian3());
      const half = tileset.root.boundingVolume.boundingVolume?.halfAxes;
      let extent = 10.0;
      if (half) {
        extent = [0, 1, 2].reduce((sum, i) => sum + Math.abs(Cesium.Cartesian3.dot(
          Cesium.Matrix3.getColumn(half, i, new Cesium.Cartesian3()), up)), 0) || 10.0;
      }
      const v = (p) => `vec3(${p.x.toFixed(3)}, ${p.y.toFixed(3)}, ${p.z.toFixed(6)})`;
      const height = `dot(\${POSITION_ABSOLUTE} - ${v(centre)}, ${v(up)})`;
      const t = `clamp((${height} + ${extent.toFixed(3)}) / ${(2 * extent).toFixed(3)}, 0.0, 1.0)`;
      return { conditions: [["${classification} === undefined", "color('#dddddd')"],
                            ["true", `hsl(0.66 * (1.0 - ${t}), 0.9, 0.5)`]] };
    }
    const conditions = Object.entries(CLASS_COLOURS).map(([code, css]) => [`\${classification} === ${code}`,
                                                                         `color('${css}')`]);
    return { conditions: [...conditions, ["true", "color('#dddddd')"]] };
  }

  // A point cloud's colour is compiled into its shader when its tiles are first drawn (CesiumJS 1.145 keeps it
  // when the style changes), so a new colour opens the tileset again (its files come from the HTTP cache).
  async restyle() {
    for (const [id, tileset] of [...this.tilesets]) {
      if (tileset.lutece.pointCloud && tileset.lutece.colour !== this.state.colour) {
        this.viewer.scene.primitives.remove(tileset);
        await this.openTileset(tileset.lutece.layer, true);
      } else {
        this.styleTileset(this.tilesets.get(id));
      }
    }
  }

  isVisible(id) {
    return !this.state.layers || this.state.layers.includes(id);
  }

  showLayer(layer, visible) {
    const tileset = this.tilesets.get(layer.id);
    if (tileset) tileset.show = visible && !(tileset.lutece.storeys && this.state.storey === "shell");
    const imagery = this.imagery.get(layer.id);
    if (imagery) imagery.show = visible;
  }

  pick(position) {
    const picked = this.viewer.scene.pick(position);
    if (!(picked instanceof Cesium.Cesium3DTileFeature)) return null;
    const properties = {};
    for (const id of picked.getPropertyIds()) properties[id] = picked.getProperty(id);
    return { layer: picked.tileset.lutece?.layer.id, properties };
  }

  zoomTo(layer) {
    const tileset = this.tilesets.get(layer.id);
    if (tileset) this.viewer.zoomTo(tileset);
    else if (layer.extent) this.viewer.camera.flyTo({ destination: Cesium.Rectangle.fromDegrees(...layer.extent) });
  }

  home() {
    const first = [...this.tilesets.values()].find((t) => t.show);
    if (first) {
      const sphere = first.boundingSphere;
      this.viewer.camera.viewBoundingSphere(sphere, new Cesium.HeadingPitchRange(0.4, -0.6, sphere.radius * 2.4));
      this.viewer.camera.lookAtTransform(Cesium.Matrix4.IDENTITY);
    }
  }

  // cam=lon,lat,height,heading,pitch (degrees, metres above the ellipsoid)
  setCamera(text) {
    const parts = (text || "").split(",").map(Number);
    if (parts.length < 3 || !parts.every(Number.isFinite)) return false;
    const [lon, lat, height, heading = 0, pitch = -90] = parts;
    this.viewer.camera.setView({ destination: Cesium.Cartesian3.fromDegrees(lon, lat, height),
                                 orientation: { heading: Cesium.Math.toRadians(heading),
                                                pitch: Cesium.Math.toRadians(pitch), roll: 0 } });
    return true;
  }

  cameraView() {
    const camera = this.viewer.camera;
    const c = camera.positionCartographic;
    return [Cesium.Math.toDegrees(c.longitude).toFixed(6), Cesium.Math.toDegrees(c.latitude).toFixed(6),
            c.height.toFixed(1), Cesium.Math.toDegrees(camera.heading).toFixed(1),
            Cesium.Math.toDegrees(camera.pitch).toFixed(1)].join(",");
  }
}
