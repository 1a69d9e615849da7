"""The report page: sections of a heading, a how-to-read line, an inline PNG and notes, in one HTML file.

Nothing is loaded from elsewhere (images are ``data:`` URIs, the style is inline, no script), so the file can be
opened offline, attached to an e-mail or kept as a CI artifact.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass, field
from typing import Any

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0 auto;
       max-width: 1240px; padding: 1em 2em; color: #1f2328; background: #fff; }
h1 { margin-bottom: 0.2em; } .subtitle { color: #57606a; margin-top: 0; }
nav a { margin-right: 1em; } section { border-top: 1px solid #d0d7de; padding: 0.5em 0 1.2em; }
.how { color: #57606a; font-style: italic; margin-top: -0.4em; }
.note { background: #fff8c5; border-left: 4px solid #d4a72c; padding: 0.4em 0.8em; }
img.figure { max-width: 100%; height: auto; display: block; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.92em; }
th, td { border: 1px solid #d0d7de; padding: 0.25em 0.7em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f6f8fa; } code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; }
@media print { section { break-inside: avoid; } nav { display: none; } }
"""


@dataclass
class Section:
    """One ``<section>`` of the report."""

    id: str  # the element id (training, knn, map, neighbours, similarity, health, config)
    title: str
    how: str  # one line: how to read it
    image: bytes | None = None  # a PNG, inlined
    alt: str = ""
    notes: list[str] = field(default_factory=list)  # shown as highlighted notes (what is missing, and why)
    body: str = ""  # extra HTML (tables), already escaped


def png_data_uri(png: bytes) -> str:
    """``data:image/png;base64,...`` of ``png``."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f'<td class="num">{value:.4g}</td>'
    if isinstance(value, int) and not isinstance(value, bool):
        return f'<td class="num">{value}</td>'
    if isinstance(value, (list, tuple, dict)) or value is None or isinstance(value, bool):
        value = json.dumps(value)
    return f"<td>{html.escape(str(value))}</td>"


def table(header: list[str], rows: list[list[Any]]) -> str:
    """An HTML table (values escaped, floats to 4 significant digits)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def flatten(values: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """``{"a": {"b": 1}}`` -> ``[("a.b", 1)]`` (lists stay values)."""
    out: list[tuple[str, Any]] = []
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.extend(flatten(value, name + "."))
        else:
            out.append((name, value))
    return out


def _section_html(section: Section) -> str:
    parts = [f'<section id="{html.escape(section.id)}">', f"<h2>{html.escape(section.title)}</h2>"]
    parts.append(f'<p class="how">{html.escape(section.how)}</p>')
    parts.extend(f'<p class="note">{html.escape(note)}</p>' for note in section.notes)
    if section.image is not None:
        alt = html.escape(section.alt or section.title)
        parts.append(f'<img class="figure" alt="{alt}" src="{png_data_uri(section.image)}">')
    if section.body:
        parts.append(section.body)
    parts.append("</section>")
    return "\n".join(parts)


def render_page(title: str, subtitle: str, sections: list[Section]) -> str:
    """The whole report as one HTML document."""
    nav = " ".join(f'<a href="#{html.escape(s.id)}">{html.escape(s.title)}</a>' for s in sections)
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{html.escape(title)}</title>",
            f"<style>{STYLE}</style>",
            "</head>",
            "<body>",
            f"<h1>{html.escape(title)}</h1>",
            f'<p class="subtitle">{html.escape(subtitle)}</p>',
            f"<nav>{nav}</nav>",
            *(_section_html(s) for s in sections),
            "</body>",
            "</html>",
            "",
        ]
    )


__all__ = ["Section", "flatten", "png_data_uri", "render_page", "table"]
