// The viewer's page: the layer list (with the caller's key), legend, licences, attributes, the 2D/3D switch,
// the storey picker, and the view kept in the URL. window.lutece exposes the state for tests and benchmarks.
import { loadLayers } from "./api.js";
import { setLanguage, getLanguage, t } from "./i18n.js";
import { colourOf, createMap, mapView, showLayer as showLayer2d, zoomTo as zoomTo2d } from "./map2d.js";
import { CLASS_COLOURS, Scene } from "./scene3d.js";
import { getKey, readState, setKey, writeState } from "./state.js";

const $ = (selector) => document.querySelector(selector);
const state = readState();
const lutece = (window.lutece = { state, layers: [], map: null, scene: null, ready2d: false, ready3d: false });

function visible(layer) {
  return !state.layers || state.layers.includes(layer.id);
}

function save() {
  if (lutece.map) state.map = mapView(lutece.map);
  if (lutece.scene) state.cam = lutece.scene.cameraView();
  writeState(state);
}

function status(text) {
  $("#status").textContent = text || "";
}

function showAttributes(found) {
  const box = $("#attributes");
  lutece.picked = found;
  if (!found) {
    box.hidden = true;
    return;
  }
  const layer = lutece.layers.find((l) => l.id === found.layer);
  $("#attributes-title").textContent = layer ? layer.title : t("attributes");
  const table = $("#attributes-table");
  table.replaceChildren(...Object.entries(found.properties).map(([name, value]) => {
    const row = document.createElement("tr");
    const key = document.createElement("th");
    const cell = document.createElement("td");
    key.textContent = name;
    cell.textContent = value === null || value === undefined ? "" : String(value);
    row.append(key, cell);
    return row;
  }));
  box.hidden = false;
}

function layerList() {
  const list = $("#layers");
  list.replaceChildren(...lutece.layers.map((layer) => {
    const item = document.createElement("li");
    item.dataset.layer = layer.id;
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = visible(layer);
    box.addEventListener("change", () => toggle(layer, box.checked));
    const swatch = document.createElement("span");
    swatch.className = `swatch ${layer.kind}`;
    if (layer.kind === "vector") swatch.style.background = colourOf(layer, lutece.layers);
    const name = document.createElement("span");
    name.textContent = layer.title;
    const kind = document.createElement("small");
    kind.textContent = t(`kind_${layer.kind}`);
    label.append(box, swatch, name, kind);
    const zoom = document.createElement("button");
    zoom.className = "zoom";
    zoom.title = t("zoom_to");
    zoom.textContent = "⤢";
    zoom.addEventListener("click", () => (state.mode === "3d" ? lutece.scene?.zoomTo(layer) : zoomTo2d(lutece.map, layer)));
    item.append(label, zoom);
    return item;
  }));
  if (!lutece.layers.length) list.textContent = t("no_layer");
  legend();
  attribution();
}

function legend() {
  const section = $("#legend");
  const rows = [];
  const title = document.createElement("h3");
  title.textContent = t("legend");
  for (const layer of lutece.layers.filter(visible)) {
    const row = document.createElement("div");
    row.className = "legend-row";
    const swatch = document.createElement("span");
    swatch.className = `swatch ${layer.kind}`;
    if (layer.kind === "vector") swatch.style.background = colourOf(layer, lutece.layers);
    const text = document.createElement("span");
    text.textContent = layer.kind === "raster" ? `${layer.title} (${t("low")} → ${t("high")})` : layer.title;
    row.append(swatch, text);
    rows.push(row);
    const tileset = state.mode === "3d" ? lutece.scene?.tilesets.get(layer.id) : null;
    if (tileset?.lutece.pointCloud) rows.push(...(state.colour === "class" ? classLegend() : rampLegend()));
  }
  section.replaceChildren(title, ...rows);
}

function classLegend() {
  return Object.entries(CLASS_COLOURS).filter(([code]) => code !== "18").map(([code, colour]) => {
    const row = document.createElement("div");
    row.className = "legend-row sub";
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = colour;
    row.append(swatch, t(`class_${code}`));
    return row;
  });
}

function rampLegend() {
  const row = document.createElement("div");
  row.className = "legend-row sub";
  const swatch = document.createElement("span");
  swatch.className = `swatch ramp-${state.colour}`;
  row.append(swatch, `${t(`by_${state.colour}`)} : ${t("low")} → ${t("high")}`);
  return [row];
}

function attribution() {
  const footer = $("#attribution");
  const parts = lutece.layers.filter(visible).map((layer) => {
    const span = document.createElement("span");
    span.className = "credit";
    span.dataset.layer = layer.id;
    const licence = layer.licence?.href ? Object.assign(document.createElement("a"), {
      href: layer.licence.href, textContent: layer.licence.title, target: "_blank", rel: "noopener" })
      : Object.assign(document.createElement("span"), { textContent: layer.licence?.title || t("restricted") });
    span.append(`${layer.title} : © Lutèce, ${t("licence").toLowerCase()} `, licence);
    if (layer.licence?.odbl) span.append(` (${t("odbl")})`);
    return span;
  });
  footer.replaceChildren(...parts);
}

function toggle(layer, on) {
  const ids = state.layers || lutece.layers.map((l) => l.id);
  state.layers = on ? [...new Set([...ids, layer.id])] : ids.filter((id) => id !== layer.id);
  if (lutece.map) showLayer2d(lutece.map, layer, on);
  if (lutece.scene) lutece.scene.showLayer(layer, on);
  legend();
  attribution();
  storeyPicker();
  save();
}

function storeyPicker() {
  const storeys = state.mode === "3d" ? lutece.scene?.storeys() : null;
  $("#storeys").hidden = !storeys;
  $("#styles3d").hidden = !(state.mode === "3d" && lutece.scene &&
    [...lutece.scene.tilesets.values()].some((tileset) => tileset.lutece.pointCloud && tileset.show));
  if (!storeys) return;
  const select = $("#storey");
  const options = [["all", t("all_storeys")], ...storeys.map((s) => [String(s.level), s.name || `${t("storey")} ${s.level}`]),
                   ["shell", t("shell")]];
  select.replaceChildren(...options.map(([value, text]) => Object.assign(document.createElement("option"),
                                                                          { value, textContent: text })));
  select.value = state.storey;
}

async function setMode(mode) {
  state.mode = mode;
  for (const button of document.querySelectorAll("#modes button")) {
    button.setAttribute("aria-pressed", String(button.dataset.mode === mode));
  }
  $("#map2d").hidden = mode !== "2d";
  $("#scene3d").hidden = mode !== "3d";
  showAttributes(null);
  if (mode === "3d" && !lutece.scene) await start3d();
  if (mode === "2d") lutece.map?.resize();
  storeyPicker();
  legend();
  save();
}

async function start2d() {
  lutece.map = await createMap($("#map2d"), lutece.layers.filter((l) => l.kind !== "3dtiles"), state, showAttributes);
  for (const layer of lutece.layers) if (!visible(layer)) showLayer2d(lutece.map, layer, false);
  lutece.map.on("moveend", save);
  lutece.map.once("idle", () => { lutece.ready2d = true; });
}

async function start3d() {
  status(t("loading"));
  lutece.scene = await Scene.create($("#scene3d"), lutece.layers, state, showAttributes);
  for (const layer of lutece.layers) if (!visible(layer)) lutece.scene.showLayer(layer, false);
  lutece.scene.onPointCloud = () => {
    storeyPicker();
    legend();
  };
  lutece.scene.viewer.camera.moveEnd.addEventListener(save);
  lutece.scene.restyle();
  const done = () => {
    lutece.ready3d = true;
    status("");
  };
  // Ready once every shown tileset has no tile left to load for the view (tilesLoaded, which also holds when
  // the view needs none: initialTilesLoaded never fires then), a few frames after they were added.
  const scene = lutece.scene.viewer.scene;
  const first = scene.frameState.frameNumber + 3;
  scene.postRender.addEventListener(function check() {
    const shown = [...lutece.scene.tilesets.values()].filter((tileset) => tileset.show);
    if (scene.frameState.frameNumber >= first && shown.every((tileset) => tileset.tilesLoaded)) {
      scene.postRender.removeEventListener(check);
      done();
    }
  });
}

function wire() {
  for (const button of document.querySelectorAll("#modes button")) {
    button.addEventListener("click", () => setMode(button.dataset.mode));
  }
  $("#lang").addEventListener("click", () => {
    state.lang = setLanguage(getLanguage() === "fr" ? "en" : "fr");
    $("#lang").textContent = state.lang === "fr" ? "EN" : "FR";
    layerList();
    storeyPicker();
    save();
  });
  $("#key").value = getKey();
  $("#key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    setKey($("#key").value.trim());
    location.reload();
  });
  $("#point-colour").value = state.colour;
  $("#point-colour").addEventListener("change", (event) => {
    state.colour = event.target.value;
    lutece.scene?.restyle();
    legend();
    save();
  });
  $("#storey").addEventListener("change", (event) => {
    state.storey = event.target.value;
    lutece.scene?.restyle();
    save();
  });
  $("#attributes-close").addEventListener("click", () => showAttributes(null));
}

async function main() {
  state.lang = setLanguage(state.lang);
  $("#lang").textContent = state.lang === "fr" ? "EN" : "FR";
  wire();
  status(t("loading"));
  try {
    lutece.layers = await loadLayers();
  } catch (error) {
    status(`${t("error")} : ${error.message}`);
    throw error;
  }
  if (!state.layers) {  // by default every layer but the rasters after the first (opaque, they would hide it)
    const rasters = lutece.layers.filter((l) => l.kind === "raster").slice(1).map((l) => l.id);
    state.layers = lutece.layers.map((l) => l.id).filter((id) => !rasters.includes(id));
  }
  layerList();
  await start2d();
  status("");
  await setMode(state.mode);
}

main();
