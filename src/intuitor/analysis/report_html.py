"""HTML pieces of `intuitor report`: the page's style and security policy, escaping, figures and notes.

Every piece of text read from a run goes through `_e` (HTML-escaped, quotes included); figures become PNGs embedded
as base64 `data:` URIs; the CSP allows nothing else, so the page loads nothing.
"""

from __future__ import annotations

import html
import json
import math

from intuitor.analysis import figure_png, png_data_uri


MAX_TEXT_CHARS = 3000

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1200px;padding:1rem 2rem;
color:#222;line-height:1.45}
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
.meta{color:#666;font-size:.9rem}nav a{margin-right:1rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.25rem .6rem;text-align:right}th{background:#f4f4f4}
td.l,th.l{text-align:left}
pre{background:#f7f7f7;border:1px solid #e3e3e3;padding:.6rem;overflow-x:auto;white-space:pre-wrap;
word-break:break-word;font-size:.82rem;max-height:28rem;overflow-y:auto}
img{max-width:100%;height:auto;border:1px solid #eee}
.note{color:#777;font-style:italic}.ok{color:#1a7f37}.bad{color:#cf222e}
details{margin:.4rem 0}summary{cursor:pointer}
.completion{border-left:3px solid #ccc;padding-left:.8rem;margin:.8rem 0}
table.side{table-layout:fixed;width:100%}table.side td,table.side th{vertical-align:top;text-align:left}
table.side pre{max-height:14rem}code.cmd{background:#f4f4f4;padding:.1rem .3rem}
"""

# No script, no remote anything: only inline styles and data: images may load.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

SECTIONS = (
    ("config", "Runs and configuration"),
    ("curves", "Training curves"),
    ("evaluation", "Evaluation"),
    ("calibration", "Calibration of self-certainty"),
    ("answer-types", "Answer types (code tasks)"),
    ("completions", "Sample completions"),
)


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _truncate(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n[... {len(text) - limit} more characters]"


def _img(fig, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="{png_data_uri(figure_png(fig))}">'


def _note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


def _num(v, digits: int = 4) -> str:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return _e(v) if v is not None else "&ndash;"
    if isinstance(v, float) and not math.isfinite(v):
        return "&ndash;"
    return f"{v:.{digits}g}" if isinstance(v, float) else str(v)


def _text_of(value) -> str:
    """Prompts may be strings or chat messages [{"role", "content"}]; completions likewise."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(m, dict) for m in value):
        return "\n\n".join(f"[{m.get('role', '?')}] {m.get('content', '')}" for m in value)
    return json.dumps(value, ensure_ascii=False, indent=1)


def _cmd(text: str) -> str:
    return f'<code class="cmd">{_e(text)}</code>'


def _hint(text: str, commands: list[str]) -> str:
    cmds = "".join(f"<li>{_cmd(c)}</li>" for c in commands)
    return f'<p class="note">{_e(text)}</p>' + (f"<ul>{cmds}</ul>" if cmds else "")
