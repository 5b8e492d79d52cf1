"""Release profiles of an interior: ``full`` (partners) and ``open`` (anyone).

The open profile generalises the rooms that a configurable list calls
sensitive (security rooms, server rooms, cash offices, children's rooms, by
their use or by words of their name): their name and use become a generic
label, their long name and description are emptied, and wherever another
element's text quotes their name (a door's "Police municipale / Couloir
Ouest") it is replaced too. Personal names are never kept: the people the
plans name (IFC persons and actors) and any titled name ("Mme Martin",
"Dr Dupont") are cut out of every text. Rules are matched without regard to
case or accents.

The list's format (YAML), one entry per category::

    security:
      uses: [security]
      words: [police, sécurité, surveillance]
      name: Local à accès restreint
      use: restricted
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd

from gis.errors import InputError
from pipelines.algorithms.interior import TEXT, Interior

PROFILES = ("full", "open")
SENSITIVE_ROOMS: dict[str, dict] = {
    "security": {"uses": ["security"], "name": "Local à accès restreint", "use": "restricted",
                 "words": ["police", "sécurité", "securite", "surveillance", "vidéoprotection", "videoprotection",
                           "armurerie", "poste de garde", "gardiennage", "security", "guard"]},
    "server_room": {"uses": ["server", "it"], "name": "Local technique", "use": "technical",
                    "words": ["serveur", "serveurs", "informatique", "baie", "datacenter", "server", "data centre"]},
    "cash_office": {"uses": ["cash"], "name": "Bureau", "use": "office",
                    "words": ["régie", "regie", "caisse", "trésorerie", "tresorerie", "coffre", "cash"]},
    "children": {"uses": ["childcare", "children"], "name": "Salle", "use": "other",
                 "words": ["enfant", "enfants", "crèche", "creche", "garderie", "halte-garderie", "périscolaire",
                           "periscolaire", "nursery", "child", "children"]},
}
_TITLES = r"(?:M\.|Mme|Mlle|MM\.|Mmes|Monsieur|Madame|Mademoiselle|Dr|Docteur|Me|Maître|Pr|Mr|Mrs|Ms|Miss)"
_NAME = r"[A-ZÀ-ÖØ-Þ][\w'’-]+"
_TITLED = re.compile(rf"(?:\s+(?:de|du|d'|of))?\s*\b{_TITLES}\s+{_NAME}(?:\s+{_NAME})?", re.UNICODE)


@dataclass(frozen=True)
class Rules:
    """A sensitive-room list: categories of uses and words, each with its generic name and use."""

    categories: dict[str, dict]
    sha256: str

    @classmethod
    def load(cls, path: str | Path | None, where: str = "") -> Rules:
        """The list in ``path`` (YAML), or the shipped :data:`SENSITIVE_ROOMS` when None."""
        if path is None:
            categories = SENSITIVE_ROOMS
        else:
            categories = _read_rules(Path(path), where)
        text = json.dumps(categories, sort_keys=True, ensure_ascii=False)
        return cls(categories, hashlib.sha256(text.encode()).hexdigest())

    def category(self, name: str, use: str) -> dict | None:
        """The category a room of this name and use falls in, if any."""
        folded_use, tokens = _fold(use), re.findall(r"[\w-]+", _fold(name))
        words, folded_name = set(tokens), " " + " ".join(tokens) + " "
        for category in self.categories.values():
            if folded_use and folded_use in {_fold(u) for u in category.get("uses", [])}:
                return category
            for word in category.get("words", []):
                token = _fold(word)
                if token in words or (" " in token and f" {token} " in folded_name):
                    return category
        return None


def release(interior: Interior, profile: str, rules: Rules) -> Interior:
    """The interior as the profile publishes it (``full``: as it is)."""
    if profile not in PROFILES:
        raise InputError(f"profile {profile!r}: use one of {', '.join(PROFILES)}")
    if profile == "full":
        return interior
    elements = interior.elements.copy()
    replacements: dict[str, str] = {}
    rooms = elements.index[elements["class"] == "room"]
    for index in rooms:
        category = rules.category(f"{elements.at[index, 'name']} {elements.at[index, 'long_name']}",
                                  elements.at[index, "use"])
        if category is None:
            continue
        for column in ("name", "long_name"):
            original = elements.at[index, column]
            if original and len(original) > 2:
                replacements[original] = category["name"]
        elements.loc[index, ["name", "use", "long_name", "description"]] = [category["name"], category["use"], "", ""]
    people = [name for name in interior.people if len(name) > 1]
    for column in TEXT:
        if column in ("class", "global_id"):
            continue
        elements[column] = [_scrub(value, replacements, people) for value in elements[column]]
    storeys = interior.storeys.copy()
    storeys["name"] = [_scrub(value, {}, people) for value in storeys["name"]]
    released = interior.with_elements(gpd.GeoDataFrame(elements, geometry=interior.elements.geometry.name,
                                                       crs=interior.crs))
    released.storeys = storeys
    return released


def _scrub(text: str, replacements: dict[str, str], people: list[str]) -> str:
    """``text`` with sensitive room names replaced and personal names cut out."""
    if not text:
        return text
    for original in sorted(replacements, key=len, reverse=True):
        if original in text:
            text = text.replace(original, replacements[original])
    text = _TITLED.sub("", text)
    for person in sorted(people, key=len, reverse=True):
        text = re.sub(rf"(?:\s+(?:de|du|d'|of))?\s*\b{re.escape(person)}\b", "", text, flags=re.IGNORECASE)
    return re.sub(r"\s{2,}", " ", text).strip(" -–/,")


def _fold(text: str) -> str:
    """Lower case without accents, for matching."""
    decomposed = unicodedata.normalize("NFKD", str(text or "")).lower()
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _read_rules(path: Path, where: str) -> dict[str, dict]:
    import yaml

    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"{where}sensitive-room list {path}: cannot read it ({str(exc).splitlines()[0]}); give a "
                         "YAML file of categories with uses, words, name and use") from None
    if not isinstance(document, dict) or not document:
        raise InputError(f"{where}sensitive-room list {path}: expected categories (a mapping of names to "
                         "uses, words, name and use)")
    for key, category in document.items():
        if not isinstance(category, dict) or not isinstance(category.get("name"), str) or \
                not isinstance(category.get("use"), str) or not (category.get("uses") or category.get("words")):
            raise InputError(f"{where}sensitive-room list {path}: category {key!r} needs 'name' and 'use' (the "
                             "generic values) and 'uses' or 'words' (what makes a room sensitive)")
    return document
