// The view kept in the URL's fragment (layers, mode, camera, storey, colours, language), so that a view can be
// shared; a partner key given as #key=... is moved to this tab's session storage and never kept in the URL.
const KEY_STORAGE = "lutece-api-key";

export function readState() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (params.has("key")) {
    setKey(params.get("key"));
    params.delete("key");
    history.replaceState(null, "", `${location.pathname}${location.search}#${params}`);
  }
  return {
    mode: params.get("mode") === "3d" ? "3d" : "2d",
    layers: params.has("layers") ? params.get("layers").split(",").filter(Boolean) : null,
    map: params.get("map"),
    cam: params.get("cam"),
    storey: params.get("storey") ?? "all",
    colour: params.get("colour") ?? "class",
    lang: params.get("lang") ?? "fr",  // French first, whatever the browser's language
  };
}

export function writeState(state) {
  const params = new URLSearchParams();
  params.set("mode", state.mode);
  if (state.layers) params.set("layers", state.layers.join(","));
  if (state.map) params.set("map", state.map);
  if (state.cam) params.set("cam", state.cam);
  if (state.storey !== "all") params.set("storey", state.storey);
  if (state.colour !== "class") params.set("colour", state.colour);
  if (state.lang !== "fr") params.set("lang", state.lang);
  history.replaceState(null, "", `${location.pathname}${location.search}#${params}`.replaceAll("%2C", ","));
}

export function getKey() {
  return sessionStorage.getItem(KEY_STORAGE) || "";
}

export function setKey(key) {
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
}
