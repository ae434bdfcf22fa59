#!/usr/bin/python3
"""Put several conformance results.json files side by side in one self-contained HTML page.

One row per case ID (sorted, grouped by the ID up to its second dot), one column per
implementation; each cell is the coloured outcome, with the reason, verdict, expected outcome,
waiver, attempts and the tail of a crash's output on hover.  Above the table: each
implementation's name, version, plugin path, outcome counts and verdict counts.
--markdown also writes the table as Markdown; --only-differences keeps only the rows whose
outcomes differ.  The page is for reading, not for parsing (reports/SCHEMAS.md).

  side_by_side.py --out page.html [--markdown table.md] [--title T] [--only-differences]
                  [LABEL=]RESULTS.json [[LABEL=]RESULTS.json ...]

Exit status: 0 with the written paths printed, 2 with a one-line error for unusable input.
"""
import argparse
import html
import os
import sys
from dataclasses import dataclass

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "perf", "tools"))
try:
    from stagekit_perf.conformance import (OUTCOMES, VERDICTS, ConformanceFileError,
                                           load_conformance, results_by_id)
except ImportError as exc:  # perf_json needs pandas
    sys.exit(f"side_by_side.py: error: cannot import the results reader ({exc}); "
             "run it with ci/python.sh")

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
        counts = dict.fromkeys(OUTCOMES, 0)
        for result in self.results.values():
            outcome = outcome_of(result)
            counts[outcome] = counts.get(outcome, 0) + 1
        return counts

    def verdict_summary(self):
        """'3 ok, 1 REGRESSION' over the results that carry a verdict; '' when none does."""
        counts = {}
        for result in self.results.values():
            if "verdict" in result:
                verdict = str(result["verdict"])
                counts[verdict] = counts.get(verdict, 0) + 1
        order = [v for v in VERDICTS if v in counts] + sorted(set(counts) - set(VERDICTS))
        return ", ".join(f"{counts[v]} {v}" for v in order)


def outcome_of(result):
    return str(result.get("outcome", "?")) if result is not None else NOT_RUN


def group_of(ident):
    """The ID up to its second dot: stager.views.cpu.pin0_share0 -> stager.views."""
    return ".".join(ident.split(".")[:2])


def split_input(arg):
    """(label or None, path) of an input given as PATH or LABEL=PATH."""
    if "=" in arg and not os.path.exists(arg):
        label, path = arg.split("=", 1)
        if label and path:
            return label, path
    return None, arg


def load_columns(args):
    """A Column per input, labelled and disambiguated; ConformanceFileError when unusable."""
    columns = []
    for arg in args:
        label, path = split_input(arg)
        doc = load_conformance(path)
        impl = doc.get("implementation")
        name = str(impl.get("name") or "unknown") if isinstance(impl, dict) else "unknown"
        columns.append(Column(label or name, path, doc, results_by_id(doc, path)))
    disambiguate(columns)
    return columns


def disambiguate(columns):
    """Append the parent directory's name to repeated labels, then a number if still repeated."""
    for suffix in ("parent", "number"):
        by_label = {}
        for column in columns:
            by_label.setdefault(column.label, []).append(column)
        for label, same in by_label.items():
            for number, column in enumerate(same if len(same) > 1 else [], 1):
                parent = os.path.basename(os.path.dirname(os.path.abspath(column.path)))
                column.label = f"{label} ({parent})" if suffix == "parent" else f"{label} #{number}"


def case_rows(columns, only_differences):
    """[(group, [(id, [result or None per column])])] sorted by ID."""
    ids = sorted(set().union(*(c.results for c in columns)))
    groups = {}
    for ident in ids:
        cells = [c.results.get(ident) for c in columns]
        if only_differences and len({outcome_of(r) for r in cells}) < 2:
            continue
        groups.setdefault(group_of(ident), []).append((ident, cells))
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


def md(text):
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


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


def write(path, text):
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def main(argv=None):
    args = parse_args(argv)
    try:
        columns = load_columns(args.inputs)
    except ConformanceFileError as exc:
        print(f"side_by_side.py: error: {exc}", file=sys.stderr)
        return 2
    groups = case_rows(columns, args.only_differences)
    outputs = [(args.out, render_html)]
    if args.markdown:
        outputs.append((args.markdown, render_markdown))
    for path, render in outputs:
        try:
            write(path, render(columns, groups, args.title, args.only_differences))
        except OSError as exc:
            print(f"side_by_side.py: error: {path}: cannot write: {exc.strerror}", file=sys.stderr)
            return 2
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
