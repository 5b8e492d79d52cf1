// French first, English available: every label of the page, and the licence statements.
const WORDS = {
  fr: {
    title: "Lutèce", layers: "Couches", partner_key: "Clé partenaire", apply: "Appliquer",
    points_colour: "Couleur des points", by_class: "par classe", by_height: "par hauteur",
    by_intensity: "par intensité", storeys: "Étages", all_storeys: "Tous les étages", shell: "Enveloppe seule",
    storey: "Étage", zoom_to: "Zoomer sur la couche", legend: "Légende", attributes: "Attributs",
    kind_vector: "vecteur", kind_raster: "raster", kind_3dtiles: "3D", low: "bas", high: "haut",
    licence: "Licence", restricted: "diffusion restreinte (partenaires)",
    odbl: "ODbL : partage à l'identique, toute base de données dérivée doit être partagée sous la même licence",
    loading: "Chargement…", error: "Erreur", no_layer: "Aucune couche publiée",
    key_applied: "Clé appliquée", key_cleared: "Clé retirée",
    class_1: "non classé", class_2: "sol", class_3: "végétation basse", class_4: "végétation moyenne",
    class_5: "végétation haute", class_6: "bâtiment", class_7: "bruit", class_9: "eau", class_17: "pont",
    class_18: "bruit haut",
  },
  en: {
    title: "Lutèce", layers: "Layers", partner_key: "Partner key", apply: "Apply",
    points_colour: "Point colour", by_class: "by class", by_height: "by height",
    by_intensity: "by intensity", storeys: "Storeys", all_storeys: "All storeys", shell: "Shell only",
    storey: "Storey", zoom_to: "Zoom to layer", legend: "Legend", attributes: "Attributes",
    kind_vector: "vector", kind_raster: "raster", kind_3dtiles: "3D", low: "low", high: "high",
    licence: "Licence", restricted: "restricted (partners)",
    odbl: "ODbL: share-alike, any derived database must be shared under the same licence",
    loading: "Loading…", error: "Error", no_layer: "No published layer",
    key_applied: "Key applied", key_cleared: "Key removed",
    class_1: "unclassified", class_2: "ground", class_3: "low vegetation", class_4: "medium vegetation",
    class_5: "high vegetation", class_6: "building", class_7: "noise", class_9: "water", class_17: "bridge deck",
    class_18: "high noise",
  },
};

let language = "fr";

export function setLanguage(lang) {
  language = WORDS[lang] ? lang : "fr";
  document.documentElement.lang = language;
  for (const element of document.querySelectorAll("[data-i18n]")) {
    element.textContent = t(element.dataset.i18n);
  }
  return language;
}

export function getLanguage() {
  return language;
}

export function t(word) {
  return WORDS[language][word] ?? WORDS.fr[word] ?? word;
}
