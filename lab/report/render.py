"""Rendering: the report's jinja2 templates (lab/templates/) into report.html (autoescape on) and
report.md (Markdown: no HTML escaping, table cells made pipe-safe)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

HERE = Path(__file__).resolve().parent
CSS = {"holds": "holds", "does not hold": "fails", "inconclusive": "inconclusive"}


def sentence(text: Any, limit: int = 180) -> str:
    """The first clause of a reason (up to its first "; "), at most `limit` characters: what a grid
    cell shows; the whole reason is one click away."""
    first = str(text or "").split("; ", 1)[0]
    return first if len(first) <= limit else first[:limit - 1].rstrip() + "…"


def env() -> Environment:
    e = Environment(loader=FileSystemLoader(str(HERE / "templates")), undefined=StrictUndefined,
                    trim_blocks=True, lstrip_blocks=True,
                    autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default=False))
    e.filters["md"] = lambda s: str(s).replace("|", "\\|").replace("\n", " ")
    e.filters["css"] = lambda verdict: CSS.get(str(verdict), "na")
    e.filters["sentence"] = sentence
    e.filters["num"] = lambda v, d=2: "-" if v is None else f"{v:.{d}g}" if isinstance(v, float) else str(v)
    return e


def write(ctx: dict[str, Any], out_dir: Path) -> Path:
    e = env()
    (out_dir / "report.md").write_text(e.get_template("report.md.j2").render(**ctx))
    html = out_dir / "report.html"
    html.write_text(e.get_template("report.html.j2").render(**ctx))
    return html
