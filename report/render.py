"""One renderer: the report's Markdown (GitHub flavour, math between dollars) to one HTML page, with
markdown-it-py (tables, heading anchors, dollar math) and math as MathML from latex2mathml (offline)."""

from __future__ import annotations

import html

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1000px; margin: auto; padding: 1em; line-height: 1.45; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1em; }}
th, td {{ border: 1px solid #ccc; padding: 2px 8px; text-align: left; vertical-align: top; }}
th {{ background: #f4f4f4; }}
img {{ max-width: 100%; }}
code {{ background: #f4f4f4; padding: 0 3px; }}
math[display="block"] {{ margin: 0.6em 0; overflow-x: auto; }}
.provenance td:first-child {{ white-space: nowrap; }}
</style>
</head>
<body>
{body}
</body>
</html>
"""


def _math(latex: str, display: bool) -> str:
    from latex2mathml.converter import convert

    return convert(latex, display="block" if display else "inline")


def parser():
    from markdown_it import MarkdownIt
    from mdit_py_plugins.anchors import anchors_plugin
    from mdit_py_plugins.dollarmath import dollarmath_plugin

    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    md.use(anchors_plugin, min_level=2, max_level=3)
    md.use(dollarmath_plugin, allow_space=True, double_inline=True,
           renderer=lambda content, options: _math(content, options.get("display_mode", False)))
    return md


def to_html(markdown: str, title: str) -> str:
    return PAGE.format(title=html.escape(title), body=parser().render(markdown))
