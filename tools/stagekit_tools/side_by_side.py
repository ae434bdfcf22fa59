"""Put several conformance results.json files side by side in one self-contained HTML page.

One row per case ID, grouped by `area.feature` and ordered within a group by variant, source,
config and rank count (case_ids; older schema-1 IDs group less finely), one column per
implementation; each cell is the coloured outcome, with the reason, verdict, expected outcome,
waiver, attempts and the tail of a crash's output on hover.  Above the table: each
implementation's name, version, plugin path, outcome counts and verdict counts.
--markdown also writes the table as Markdown; --only-differences keeps only the rows whose
outcomes differ.  The page is for reading, not for parsing (reports/SCHEMAS.md).

  python3 -m stagekit_tools.side_by_side --out page.html [--markdown table.md] [--title T]
      [--only-differences] [LABEL=]RESULTS.json [[LABEL=]RESULTS.json ...]

Exit status: 0 with the written paths printed, 2 with a one-line error for unusable input.
"""
import argparse
import html
import sys
from dataclasses import dataclass

from stagekit_tools import case_ids, cli
from stagekit_tools.conformance import (OUTCOMES, VERDICTS, ConformanceFileError,
                                        count_outcomes, count_verdicts, disambiguate,
                                        implementation_name, load_conformance, results_by_id,
                                        split_labelled)
from stagekit_tools.jsonfile import write_text
from stagekit_tools.render import md_escape as md

PROG = "side_by_side"

NOT_RUN = "not run"
OUTPUT_LINES = 20
OUTPUT_CHARS = 4000
CSS = """
body { font-family: sans-serif; margin: 1.5em; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { border: 1px solid #ccc; padding: 2px 8px; text-align: left; font-size: 90%; }
th.id { font-family: monospace; font-weight: normal; }
tr.group th { background: #37474f; color: #fff; }
td.num { text-align: right; }
.o-pass { background: #c8e6c9; }
.o-fail { background: #ef9a9a; }
.o-crash { background: #8b0000; color: #fff; }
.o-timeout { background: #ffb74d; }
.o-not_supported { background: #e0e0e0; }
.o-waived { background: #b39ddb; }
.o-missing { background: #f5f5f5; color: #999; }
.o-other { background: #fff59d; }
.badge { font-size: 75%; font-weight: bold; padding: 0 4px; margin-left: 4px; border-radius: 3px;
         background: #fff; color: #b71c1c; border: 1px solid #b71c1c; }
.badge.v-FIX { color: #1b5e20; border-color: #1b5e20; }
.badge.v-DIFFERENCE { color: #4a148c; border-color: #4a148c; }
.badge.v-MISSING { color: #555; border-color: #555; }
"""
FILTER_JS = """
(function () {
  var box = document.getElementById("filter");
  box.hidden = false;
  box.addEventListener("input", function () {
    var q = box.value.toLowerCase();
    document.querySelectorAll("tbody.group").forEach(function (group) {
      var shown = 0;
      group.querySelectorAll("tr.case").forEach(function (row) {
        row.hidden = row.dataset.id.toLowerCase().indexOf(q) < 0;
        if (!row.hidden) shown++;
      });
      group.hidden = shown === 0;
    });
  });
})();
"""


@dataclass
class Column:
    """One implementation under test: its label, file and results by case ID."""
    label: str
    path: str
    doc: dict
    results: dict

    def field(self, *keys):
        value = self.doc
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    def plugin(self):
        """(path, details) of implementation.plugin; ("", "") when absent."""
        plugin = self.field("implementation", "plugin")
        if not isinstance(plugin, dict):
            return "", ""
        details = ", ".join(f"{k} {plugin[k]}" for k in ("abi", "build_tag") if k in plugin)
        return str(plugin.get("path", "")), details

    def counts(self):
        """{outcome: n} over this column's results, every known outcome present."""
        return count_outcomes(self.results.values())

    def verdict_summary(self):
        """'3 ok, 1 REGRESSION' over the results that carry a verdict; '' when none does."""
        return ", ".join(f"{n} {v}" for v, n in count_verdicts(self.results.values()).items())


def outcome_of(result):
    return str(result.get("outcome", "?")) if result is not None else NOT_RUN


def load_columns(args):
    """A Column per input, labelled and disambiguated; ConformanceFileError when unusable."""
    columns = []
    for arg in args:
        label, path = split_labelled(arg)
        doc = load_conformance(path)
        columns.append(Column(label or implementation_name(doc), path, doc,
                              results_by_id(doc, path)))
    disambiguate(columns)
    return columns


def case_rows(columns, only_differences):
    """[(area.feature, [(id, [result or None per column])])] in case_ids order."""
    ids = sorted(set().union(*(c.results for c in columns)), key=case_ids.sort_key)
    groups = {}
    for ident in ids:
        cells = [c.results.get(ident) for c in columns]
        if only_differences and len({outcome_of(r) for r in cells}) < 2:
            continue
        groups.setdefault(case_ids.parse(ident).group, []).append((ident, cells))
    return list(groups.items())


def as_list(value):
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def verdict_badge(result):
    """The verdict when present and not ok, else ''."""
    verdict = result.get("verdict") if result is not None else None
    return str(verdict) if verdict not in (None, "", "ok") else ""


def hover_text(result):
    """Everything a reader needs about one cell, as plain text."""
    if result is None:
        return NOT_RUN
    outcome = outcome_of(result)
    lines = [outcome + (f": {result['reason']}" if result.get("reason") else "")]
    if verdict_badge(result):
        lines.append(f"verdict: {verdict_badge(result)}")
    if "expected" in result:
        lines.append("expected: " + " or ".join(as_list(result["expected"])))
    waiver = result.get("waiver")
    if isinstance(waiver, dict):
        parts = [str(waiver[k]) for k in ("reason", "link") if waiver.get(k)]
        lines.append("waiver: " + " — ".join(parts))
    elif waiver:
        lines.append(f"waiver: {waiver}")
    if isinstance(result.get("attempts"), list):
        lines.append("attempts: " + ", ".join(as_list(result["attempts"])))
    if outcome in ("crash", "timeout") and result.get("output"):
        tail = "\n".join(str(result["output"]).splitlines()[-OUTPUT_LINES:])[-OUTPUT_CHARS:]
        lines.append(f"output (last {OUTPUT_LINES} lines):\n{tail}")
    return "\n".join(lines)


def css_class(outcome):
    if outcome == NOT_RUN:
        return "o-missing"
    return f"o-{outcome}" if outcome in OUTCOMES else "o-other"


def cell_html(result):
    outcome = outcome_of(result)
    text = "—" if result is None else html.escape(outcome)
    badge = verdict_badge(result)
    if badge:
        kind = badge if badge in VERDICTS else "other"
        text += f' <span class="badge v-{kind}">{html.escape(badge)}</span>'
    return (f'<td class="{css_class(outcome)}" title="{html.escape(hover_text(result))}">'
            f"{text}</td>")


def summary_rows(columns):
    """[(label, name, version, plugin, plugin details, run, file, counts, verdicts)]."""
    rows = []
    for c in columns:
        run = " ".join(str(c.field("run", k)) for k in ("profile", "started")
                       if c.field("run", k) is not None)
        rows.append((c.label, str(c.field("implementation", "name") or ""),
                     str(c.field("implementation", "version") or ""), *c.plugin(), run,
                     c.path, c.counts(), c.verdict_summary()))
    return rows


def other_outcomes(columns):
    return sorted({o for c in columns for o in c.counts() if o not in OUTCOMES})


def count_line(groups, only_differences):
    """'6 cases', or '1 case whose outcomes differ'."""
    n = sum(len(rows) for _, rows in groups)
    scope = " whose outcomes differ" if only_differences else ""
    return f"{n} case{'' if n == 1 else 's'}{scope}"


def render_html(columns, groups, title, only_differences):
    esc = html.escape
    shown = OUTCOMES + tuple(other_outcomes(columns))
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{esc(title)}</title><style>{CSS}</style></head><body>",
           f"<h1>{esc(title)}</h1>",
           "<h2>Implementations</h2>", '<table class="summary"><thead><tr><th>column</th>'
           "<th>name</th><th>version</th><th>plugin</th><th>run</th><th>file</th>"
           + "".join(f'<th class="{css_class(o)}">{esc(o)}</th>' for o in shown)
           + "<th>verdicts</th></tr></thead><tbody>"]
    for label, name, version, plugin, details, run, path, counts, verdicts in summary_rows(columns):
        out.append(f"<tr><th>{esc(label)}</th><td>{esc(name)}</td><td>{esc(version)}</td>"
                   f'<td title="{esc(details)}">{esc(plugin)}</td><td>{esc(run)}</td>'
                   f"<td>{esc(path)}</td>"
                   + "".join(f'<td class="num">{counts.get(o, 0)}</td>' for o in shown)
                   + f"<td>{esc(verdicts)}</td></tr>")
    out.append("</tbody></table>")
    out.append(f"<h2>Cases</h2><p>{count_line(groups, only_differences)}; "
               "hover a cell for the reason.</p>")
    out.append('<p><input id="filter" type="search" placeholder="filter case IDs" hidden></p>')
    out.append('<table class="cases"><thead><tr><th>case</th>'
               + "".join(f"<th>{esc(c.label)}</th>" for c in columns) + "</tr></thead>")
    for group, rows in groups:
        out.append(f'<tbody class="group"><tr class="group"><th colspan="{len(columns) + 1}">'
                   f"{esc(group)}</th></tr>")
        for ident, cells in rows:
            out.append(f'<tr class="case" data-id="{esc(ident)}"><th class="id">{esc(ident)}</th>'
                       + "".join(cell_html(r) for r in cells) + "</tr>")
        out.append("</tbody>")
    out.append(f"</table><script>{FILTER_JS}</script></body></html>")
    return "\n".join(out) + "\n"


def render_markdown(columns, groups, title, only_differences):
    extra = other_outcomes(columns)
    heads = ["column", "name", "version", "plugin", "run", "file", *OUTCOMES, *extra, "verdicts"]
    out = [f"# {md(title)}", "", "| " + " | ".join(heads) + " |", "|" + " --- |" * len(heads)]
    for label, name, version, plugin, _, run, path, counts, verdicts in summary_rows(columns):
        cells = [label, name, version, plugin, run, path,
                 *(counts.get(o, 0) for o in OUTCOMES + tuple(extra)), verdicts]
        out.append("| " + " | ".join(md(c) for c in cells) + " |")
    out += ["", count_line(groups, only_differences) + ".", "",
            "| case | " + " | ".join(md(c.label) for c in columns) + " |",
            "|" + " --- |" * (len(columns) + 1)]
    for group, rows in groups:
        out.append(f"| **{md(group)}** |" + " |" * len(columns))
        for ident, cells in rows:
            texts = ["—" if r is None else md(outcome_of(r)) +
                     (f" **{md(verdict_badge(r))}**" if verdict_badge(r) else "") for r in cells]
            out.append(f"| `{md(ident)}` | " + " | ".join(texts) + " |")
    return "\n".join(out) + "\n"


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog=cli.prog(PROG),
        description="Put several conformance results.json files side by side in one HTML page "
                    "(one row per case, one column per implementation).")
    parser.add_argument("inputs", nargs="+", metavar="[LABEL=]RESULTS.json",
                        help="a results.json (stagekit-conform --out); LABEL= sets its column "
                             "label (default: implementation.name)")
    parser.add_argument("--out", required=True, metavar="PAGE.html", help="the HTML page to write")
    parser.add_argument("--markdown", metavar="TABLE.md", help="also write the table as Markdown")
    parser.add_argument("--title", default="stagekit conformance side by side",
                        help="page title (default: %(default)s)")
    parser.add_argument("--only-differences", action="store_true",
                        help="only the cases whose outcomes are not the same everywhere")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        columns = load_columns(args.inputs)
    except ConformanceFileError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    groups = case_rows(columns, args.only_differences)
    outputs = [(args.out, render_html)]
    if args.markdown:
        outputs.append((args.markdown, render_markdown))
    for path, render in outputs:
        try:
            write_text(path, render(columns, groups, args.title, args.only_differences))
        except OSError as exc:
            print(f"{PROG}: error: {path}: cannot write: {exc.strerror}", file=sys.stderr)
            return 2
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
