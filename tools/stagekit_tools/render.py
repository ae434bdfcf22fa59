"""Render a report, given as a list of blocks, to one self-contained HTML page or to Markdown.

A block is a tuple whose first item names its kind:

    ("h1", text)  ("h2", text, anchor)  ("h3", text)  ("p", inline)  ("small", inline)
    ("warn", inline)  ("list", [inline, ...])  ("table", headers, rows[, css class])
    ("notes", [Note, ...])  ("details", summary, [block, ...])
    ("figures", [(title, {"png": href, "svg": href})])  ("section", anchor)  ("end_section",)

`inline` is a string, a `Span`, a list of them, or `Lines` (inlines on lines of their own).  A
Span carries a CSS class (`good`, `bad`, `muted`, `expected`), a link, a hover title and footnote
references (`Note`s: a reason said once and referred to as [1], [2], ... wherever it applies).
Table cells are inlines; a cell's class is its Span's class, or PASS/MISS/pass/fail/... coloured
by `cell_class`.
`md_escape` is the one Markdown escaper of the tools.  Standard library only.
"""
import html
from dataclasses import dataclass, field

BAD = ("MISS", "ERROR", "fail", "crash", "timeout")
CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em auto;max-width:1320px;
padding:0 1em;color:#1f2328;line-height:1.4}
h1{margin-bottom:.2em}h2{border-bottom:1px solid #d0d7de;padding-bottom:.2em;margin-top:1.6em}
p.small,span.small{font-size:85%;color:#57606a}
table{border-collapse:collapse;margin:.5em 0 1.2em}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;font-size:88%;vertical-align:top}
th{background:#f6f8fa}table.wide{width:100%}table.wide td:last-child{min-width:17em}
td.good{background:#dafbe1}td.bad{background:#ffebe9;font-weight:600}
td.expected{background:#fff8c5}td.muted{color:#6e7781}
span.good{color:#1a7f37;font-weight:600}span.bad{color:#cf222e;font-weight:600}
span.muted{color:#6e7781}span.expected{color:#9a6700;font-weight:600}
span.big{font-size:125%;font-weight:700}
sup a{text-decoration:none}
.warn{background:#fff8c5;border-left:4px solid #d4a72c;padding:4px 8px}
ol.notes{font-size:85%;color:#424a53}ol.notes li:target{background:#fff8c5}
div.figures{display:grid;grid-template-columns:repeat(auto-fill,minmax(600px,1fr));gap:1em}
figure{margin:0 0 1em}figure img{width:100%;border:1px solid #d0d7de}
figcaption{font-size:90%;color:#57606a}
details{margin:.5em 0 1.2em}summary{cursor:pointer;font-weight:600}
"""


@dataclass(frozen=True)
class Note:
    """A footnote: shown once at `anchor` as `label. text`, referred to by its label."""
    anchor: str
    label: str
    text: str


@dataclass(frozen=True)
class Span:
    """Inline text with optional class, link, hover title and footnote references."""
    text: str
    cls: str = ""
    href: str = ""
    title: str = ""
    notes: tuple = field(default_factory=tuple)


@dataclass(frozen=True)
class Lines:
    """Inlines shown one per line (in a table cell or a paragraph)."""
    items: tuple


class Footnotes:
    """Numbers each distinct text once, in the order first referred to."""

    def __init__(self, prefix="note"):
        self.prefix, self.by_text = prefix, {}

    def ref(self, text):
        """The Note of text, numbered on first use."""
        if text not in self.by_text:
            n = len(self.by_text) + 1
            self.by_text[text] = Note(f"{self.prefix}-{n}", str(n), text)
        return self.by_text[text]

    def notes(self):
        return list(self.by_text.values())


def md_escape(text):
    """Text for a Markdown table cell or heading: backslash, | and newlines made harmless."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _spans(inline):
    if isinstance(inline, Lines):
        return [s for item in inline.items for s in _spans(item)]
    if isinstance(inline, (list, tuple)):
        return [s if isinstance(s, Span) else Span(str(s)) for s in inline]
    return [inline if isinstance(inline, Span) else Span(str(inline))]


def plain(inline):
    """The text of an inline without markup or footnote labels."""
    return "".join(s.text for s in _spans(inline))


def cell_class(inline):
    """The class of a table cell: its first classed Span's, else by the cell's text."""
    for span in _spans(inline):
        if span.cls:
            return span.cls
    value = plain(inline)
    if value in ("PASS", "pass"):
        return "good"
    if value in BAD or value.startswith("ERROR"):
        return "bad"
    if value.startswith(("skipped", "not measured", "NOT MEASURED", "not_supported")):
        return "muted"
    return ""


def _html_inline(inline):
    if isinstance(inline, Lines):
        return "".join(f'<div class="line">{_html_inline(item)}</div>' for item in inline.items)
    e, out = html.escape, []
    for span in _spans(inline):
        text = e(span.text)
        if span.href:
            text = f'<a href="{e(span.href)}">{text}</a>'
        attrs = (f' class="{e(span.cls)}"' if span.cls else "") + \
            (f' title="{e(span.title)}"' if span.title else "")
        if attrs:
            text = f"<span{attrs}>{text}</span>"
        refs = ",".join(f'<a href="#{e(n.anchor)}">{e(n.label)}</a>' for n in span.notes)
        out.append(text + (f"<sup>[{refs}]</sup>" if refs else ""))
    return "".join(out)


def _md_inline(inline, escape=False):
    if isinstance(inline, Lines):
        return "<br>".join(_md_inline(item, escape) for item in inline.items)
    out = []
    for span in _spans(inline):
        text = md_escape(span.text) if escape else span.text
        if span.href:
            text = f"[{text}]({span.href})"
        if span.cls in ("good", "bad", "big", "expected") and text.strip():
            text = f"**{text.strip()}**" + (" " if text.endswith(" ") else "")
        refs = ",".join(n.label for n in span.notes)
        out.append(text + (f" [{refs}]" if refs else ""))
    return "".join(out)


def render_html(blocks, title):
    """One self-contained page: inline CSS, images linked by the hrefs in the blocks."""
    e = html.escape
    return "\n".join(["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
                      f"<title>{e(title)}</title><style>{CSS}</style></head><body>"]
                     + _html_blocks(blocks) + ["</body></html>"]) + "\n"


def _html_blocks(blocks):
    e, out = html.escape, []
    for block in blocks:
        kind = block[0]
        if kind == "h1":
            out.append(f"<h1>{e(block[1])}</h1>")
        elif kind == "h2":
            anchor = f' id="{e(block[2])}"' if len(block) > 2 and block[2] else ""
            out.append(f"<h2{anchor}>{e(block[1])}</h2>")
        elif kind == "h3":
            out.append(f"<h3>{e(block[1])}</h3>")
        elif kind == "p":
            out.append(f"<p>{_html_inline(block[1])}</p>")
        elif kind == "small":
            out.append(f'<p class="small">{_html_inline(block[1])}</p>')
        elif kind == "warn":
            out.append(f'<p class="warn">{_html_inline(block[1])}</p>')
        elif kind == "list":
            out.append("<ul>" + "".join(f"<li>{_html_inline(i)}</li>" for i in block[1])
                       + "</ul>")
        elif kind == "table":
            cls = f' class="{e(block[3])}"' if len(block) > 3 and block[3] else ""
            out.append(f"<table{cls}><thead><tr>"
                       + "".join(f"<th>{e(h)}</th>" for h in block[1]) + "</tr></thead><tbody>")
            for row in block[2]:
                cells = []
                for cell in row:
                    cls = cell_class(cell)
                    cells.append((f'<td class="{cls}">' if cls else "<td>") + _html_inline(cell)
                                 + "</td>")
                out.append("<tr>" + "".join(cells) + "</tr>")
            out.append("</tbody></table>")
        elif kind == "notes":
            out.append('<ol class="notes">' + "".join(
                f'<li id="{e(n.anchor)}" value="{e(n.label)}">{e(n.text)}</li>'
                for n in block[1]) + "</ol>")
        elif kind == "figures":
            out.append('<div class="figures">')
            for caption, links in block[1]:
                src = links.get("png") or links.get("svg")
                alt = " | ".join(f'<a href="{e(h)}">{x.upper()}</a>' for x, h in links.items())
                out.append(f'<figure><img src="{e(src)}" alt="{e(caption)}">'
                           f"<figcaption>{e(caption)} ({alt})</figcaption></figure>")
            out.append("</div>")
        elif kind == "section":
            out.append(f'<section id="{e(block[1])}">')
        elif kind == "end_section":
            out.append("</section>")
        elif kind == "details":
            out.append(f"<details><summary>{_html_inline(block[1])}</summary>")
            out += _html_blocks(block[2])
            out.append("</details>")
    return out


def render_markdown(blocks):
    """The same blocks as Markdown (sections become nothing, footnotes a numbered list, details
    their summary in bold and then their blocks)."""
    out = []
    for block in blocks:
        if block[0] == "details":
            out += [f"**{_md_inline(block[1])}**", "", render_markdown(block[2])]
            continue
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            out += ["#" * int(kind[1]) + " " + block[1], ""]
        elif kind in ("p", "small"):
            out += [_md_inline(block[1]), ""]
        elif kind == "warn":
            out += [f"> **{_md_inline(block[1])}**", ""]
        elif kind == "list":
            out += [f"- {_md_inline(i)}" for i in block[1]] + [""]
        elif kind == "table":
            out.append("| " + " | ".join(md_escape(h) for h in block[1]) + " |")
            out.append("|" + "---|" * len(block[1]))
            out += ["| " + " | ".join(_md_inline(c, escape=True) for c in row) + " |"
                    for row in block[2]]
            out.append("")
        elif kind == "notes":
            out += [f"{n.label}. {n.text}" for n in block[1]] + [""]
        elif kind == "figures":
            for caption, links in block[1]:
                src = links.get("png") or links.get("svg")
                out += [f"![{caption}]({src})", "",
                        " · ".join(f"[{x.upper()}]({h})" for x, h in links.items()), ""]
    return "\n".join(out)
