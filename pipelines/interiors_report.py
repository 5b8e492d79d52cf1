"""The run report of an interiors pipeline: what was read, per storey and class, and every element left out.

Skipped elements are listed by GlobalId, IFC class and reason only (never by name: the report sits beside
open products and names may be sensitive).
"""

from __future__ import annotations

import html
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd


def write_report(output: Path, pipeline: str, interior, products: list[Path], seconds: float) -> Path:
    """Write ``report.html`` in ``output``; return its path."""
    page = output / "report.html"
    partial = page.with_name(page.name + ".partial")
    partial.write_text(_html(pipeline, interior, products, seconds, output), encoding="utf-8")
    partial.replace(page)
    return page


def _table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
                   for row in frame.itertuples(index=False))
    return f"<table><tr>{head}</tr>{rows}</table>"


def _html(pipeline: str, interior, products: list[Path], seconds: float, output: Path) -> str:
    elements = interior.elements
    counts = (elements.groupby(["level", "class"]).size().unstack(fill_value=0).reset_index()
              if len(elements) else pd.DataFrame())
    storeys = interior.storeys.merge(counts, on="level", how="left") if len(counts) else interior.storeys
    skipped = pd.DataFrame([vars(s) for s in interior.skipped], columns=["global_id", "ifc_class", "reason"])
    georef = interior.georeferencing
    facts = (("pipeline", pipeline), ("plans", interior.source.name), ("elements", f"{len(elements):,}"),
             ("skipped", f"{len(skipped):,}"), ("georeferencing", ", ".join(f"{k}: {v}" for k, v in georef.items())),
             ("time", f"{seconds:.1f} s"), ("made", datetime.now(timezone.utc).isoformat(timespec="seconds")))
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in facts)
    listed = "".join(f"<li>{html.escape(str(p.relative_to(output)))}</li>" for p in products)
    left_out = _table(skipped) if len(skipped) else "<p>none: every element of the plans was converted</p>"
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(pipeline)}: run report</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}th,td{{text-align:left;padding-right:1em}}</style>
</head><body><h1>Run report: {html.escape(pipeline)}</h1><table>{rows}</table>
<h2>Storeys and elements per class</h2>{_table(storeys)}
<h2>Elements skipped ({len(skipped)})</h2>{left_out}
<h2>Products written by this run</h2><ul>{listed}</ul></body></html>"""
