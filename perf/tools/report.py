#!/usr/bin/python3
"""Write the stagekit report (index.html and README.md) into --out.

Sections: summary, environment (perf, peer and conformance files side by side), conformance
(counts per outcome, every failure with its reason, not-supported reasons with counts), the
performance targets (PASS / MISS per benchmark), the perf tables, the distributed table (with
--dist: algbw, busbw and the ratio to the all-gather or memcpy limit of the same run), the
replication table (from the same --dist file: exchange next to the point-to-point limit, persist
next to the sequential-write limit, stage next to both, with the ratio to them), and the
charts drawn by plot.py (linked relative to --out).  Inputs that are absent or unusable are
stated in the report, never fatal.  The HTML is self-contained apart from the chart images.
"""
import argparse
import html
import json
import os
import sys
from urllib.parse import quote

from stagekit_perf import conformance as conf
from stagekit_perf import dist, stats, targets
from stagekit_perf.perf_json import PerfFileError, load_run

CHARTS = (("throughput", "Throughput per layout and destination, cold vs warm"),
          ("ratio_to_limit", "Ratio to the copy limit"),
          ("history", "Throughput over time"),
          ("dist_bandwidth", "Distributed: gather_state_dict and distribute_tensors next to the "
                             "all-gather and memcpy limits"),
          ("replication_bandwidth", "Replication: exchange and persist next to the point-to-point "
                                    "and sequential-write limits, and the ratio to them"))
# environment row: (label, perf context key, conformance path)
ENVIRONMENT = (("implementation", "implementation", ("implementation", "name")),
               ("version", "implementation_version", ("implementation", "version")),
               ("git sha", "git_sha", ("environment", "git", "sha")),
               ("git dirty", "git_dirty", ("environment", "git", "dirty")),
               ("date", "date", ("run", "started")),
               ("mode / profile", "mode", ("run", "profile")),
               ("compiler", "compiler", ("environment", "compiler")),
               ("cpu model", "cpu_model", ("environment", "host", "cpu_model")),
               ("cpu count", "cpu_count", ("environment", "host", "cpu_count")),
               ("memory", "memory_total_bytes", ("environment", "host", "memory_total")),
               ("cuda", "cuda", ("environment", "cuda")),
               ("cuda reason", "cuda_reason", ("environment", "cuda_reason")),
               ("gpu", "gpu", None),
               ("copy threads", "copy_threads", None),
               ("host", "host_name", ("environment", "host", "hostname")),
               ("build type", "library_build_type", None))
BAD = ("MISS", "ERROR", "fail", "crash", "timeout")


def nested(doc, path):
    for key in path or ():
        if not isinstance(doc, dict) or key not in doc:
            return None
        doc = doc[key]
    return doc


def text(value):
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict) and value.get("description"):
        return str(value["description"])
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def memory(context):
    """memory_total_bytes (bytes) or memory_total ("24683656 kB") as GiB."""
    value = str(context.get("memory_total_bytes") or context.get("memory_total") or "")
    parts = value.split()
    if parts and parts[0].isdigit():
        scale = 1024 if len(parts) > 1 and parts[1].lower() == "kb" else 1
        return f"{int(parts[0]) * scale / 2**30:.1f} GiB"
    return value or None


def number(value, fmt):
    return "-" if value is None or value != value else format(value, fmt)


def load_inputs(args):
    """(perf, peer, conformance, dist, problems): each input or None, with the reason when None."""
    loaded, problems = {}, []
    for key, path in (("perf", args.perf), ("peer", args.peer)):
        loaded[key] = None
        if not path:
            problems.append(f"No {key} result file was given.")
            continue
        try:
            loaded[key] = load_run(path)
            problems += [f"{key}: {w}" for w in loaded[key].warnings]
        except PerfFileError as exc:
            problems.append(f"The {key} result file is unusable: {exc}")
    loaded["dist"] = None
    if args.dist:
        try:
            loaded["dist"] = load_run(args.dist)
            problems += [f"dist: {w}" for w in loaded["dist"].warnings]
        except PerfFileError as exc:
            problems.append(f"The dist result file is unusable: {exc}")
    loaded["conformance"] = None
    if not args.conformance:
        problems.append("No conformance results were given.")
    else:
        try:
            loaded["conformance"] = conf.load_conformance(args.conformance)
        except conf.ConformanceFileError as exc:
            problems.append(f"The conformance results are unusable: {exc}")
    return loaded["perf"], loaded["peer"], loaded["conformance"], loaded["dist"], problems


def environment_blocks(perf, peer, cdoc):
    columns = [("perf", perf), ("peer", peer)]
    headers = ["", "perf (" + (perf.path if perf else "absent") + ")",
               "peer (" + (peer.path if peer else "absent") + ")", "conformance"]
    rows = []
    for label, key, path in ENVIRONMENT:
        cells = [label]
        for _, run in columns:
            value = run.context.get(key) if run and key else None
            if key == "memory_total_bytes":
                value = memory(run.context) if run else None
            cells.append(text(value))
        value = nested(cdoc, path) if cdoc and path else None
        if label == "memory" and value is not None:
            value = memory({"memory_total": value})
        cells.append(text(value))
        rows.append(cells)
    return [("h2", "Environment"), ("table", headers, rows)]


def conformance_blocks(cdoc, path):
    blocks = [("h2", "Conformance")]
    if cdoc is None:
        return blocks + [("warn", "No conformance results: " + (f"{path} could not be used (see "
                                                               "Inputs)." if path else
                                                               "none were given."))]
    impl = cdoc.get("implementation", {})
    blocks.append(("p", f"{text(impl.get('name'))} {text(impl.get('version'))}, profile "
                        f"{text(nested(cdoc, ('run', 'profile')))}, {len(cdoc['results'])} cases "
                        f"({path})."))
    counts = cdoc["counts"]
    order = list(conf.OUTCOMES) + sorted(set(counts) - set(conf.OUTCOMES))
    blocks.append(("table", ["outcome", "cases"], [[o, str(counts.get(o, 0))] for o in order]))
    failing = conf.failures(cdoc)
    blocks.append(("h3", f"Failures ({len(failing)})"))
    blocks.append(("table", ["case", "outcome", "reason"],
                   [[r.get("id", "?"), r.get("outcome"), text(r.get("reason"))] for r in failing])
                  if failing else ("p", "No failures."))
    reasons = conf.not_supported_reasons(cdoc)
    blocks.append(("h3", "Not supported here"))
    blocks.append(("table", ["cases", "reason"], [[str(n), r] for n, r in reasons])
                  if reasons else ("p", "Every case ran."))
    return blocks


def target_blocks(perf):
    blocks = [("h2", "Targets")]
    if perf is None:
        return blocks + [("warn", "No usable perf result file: targets not evaluated.")]
    rows = targets.evaluate(stats.summarize(perf.frame))
    blocks.append(("p", f"Evaluated from {perf.path} ({perf.describe()})."))
    if perf.context.get("mode") == "smoke":
        blocks.append(("warn", "Mode smoke: tiny sizes and single iterations; the targets "
                               "below are not meaningful for this run."))
    blocks.append(("table", ["target", "benchmark", "measured", "result", "note"],
                   [[f"{r['pattern']}: {r['target']}", r["benchmark"], r["measured"] or "-",
                     r["result"], r["note"] or "-"] for r in rows]))
    return blocks


def perf_blocks(run, role):
    blocks = [("h2", f"Performance: {role}")]
    if run is None:
        return blocks + [("warn", f"No usable {role} result file (see Inputs).")]
    summary = stats.summarize(run.frame)
    blocks.append(("p", f"{run.path}: {run.describe()}, mode {text(run.context.get('mode'))}."))
    errors = summary[summary["status"] == "error"]
    for name, row in errors.iterrows():
        blocks.append(("warn", f"ERROR {name}: {row['error']}"))
    rows = []
    for name, r in summary.iterrows():
        status = {"ok": "ok", "skipped": f"skipped: {r['skipped_reason']}",
                  "error": f"ERROR: {r['error']}"}[r["status"]]
        rows.append([name, number(r["bytes_per_second_median"] / 1e9, ".2f"),
                     number(r["ratio_to_limit_median"], ".3f"),
                     number(r["overhead_ns_per_tensor_median"], ".0f"), r["limit"] or "-",
                     str(r["n"]), status])
    blocks.append(("table", ["benchmark", "GB/s (median)", "ratio_to_limit", "overhead ns/tensor",
                             "limit", "reps", "status"], rows))
    return blocks


def dist_blocks(run, path):
    blocks = [("h2", "Performance: distributed (stagekit-dist-bench)")]
    if run is None:
        if path:
            return blocks + [("warn", f"No usable dist result file ({path} could not be used; "
                                      "see Inputs).")]
        return blocks + [("warn", "No dist result file was given (ci/perf-report.sh runs "
                                  "stagekit-dist-bench when it is built; its log says why it "
                                  "did not run or failed).")]
    summary, _ = dist.split(dist.summarize(run.frame))
    blocks.append(("p", f"{run.path}: {run.describe()}, mode {text(run.context.get('mode'))}, "
                        f"world {dist.world(run)}. algbw = S / time, busbw = algbw x (N-1)/N "
                        "(nccl-tests' all-gather factor); an iteration's time is the slowest "
                        "rank's; ratio = algbw / the limit's algbw for the same S in this run."))
    blocks += error_warnings(summary)
    rows = []
    for name, r in summary.iterrows():
        status = status_text(r)
        rows.append([name, dist.size_text(int(r["bytes"])), number(r["algbw"] / 1e9, ".3f"),
                     number(r["busbw"] / 1e9, ".3f"), r["limit"] or "-",
                     number(r["limit_algbw"] / 1e9, ".3f"), number(r["ratio_to_limit"], ".3f"),
                     str(r["n"]), status])
    blocks.append(("table", ["benchmark", "S", "algbw GB/s", "busbw GB/s", "limit",
                             "limit algbw GB/s", "ratio_to_limit", "reps", "status"], rows))
    return blocks


def error_warnings(summary):
    """One warning block per benchmark of a dist summary that ended in an error."""
    return [("warn", f"ERROR {name}: {row['error']}")
            for name, row in summary[summary["status"] == "error"].iterrows()]


def status_text(r):
    """The status column of a dist summary row: ok, skipped (why) or ERROR (what)."""
    return {"ok": "ok", "skipped": f"skipped: {r['skipped_reason']}",
            "error": f"ERROR: {r['error']}"}[r["status"]]


def replication_blocks(run, path):
    blocks = [("h2", "Performance: replication (stagekit-dist-bench)")]
    if run is None:
        return blocks + [("warn", "No replication results: they come from the dist result file"
                                  + (f" ({path} could not be used)." if path else
                                     ", and none was given."))]
    _, summary = dist.split(dist.summarize(run.frame))
    if summary.empty:
        return blocks + [("warn", f"{run.path} holds no replication benchmarks (limit/p2p, "
                                  "limit/seq_write, replicate/*): a stagekit-dist-bench from "
                                  "before them?")]
    blocks.append(("p", f"World {dist.world(run)}. S = the bytes of one rank's state dict; "
                        "algbw = S / time, an iteration's time being the slowest rank's. "
                        "replicate/exchange is divided by limit/p2p (S bytes each way between "
                        "partner ranks), replicate/persist by limit/seq_write (S bytes written "
                        "and fsynced by every rank at once), replicate/stage by both one after "
                        "the other (1 / (1/p2p + 1/seq_write)). A replicate row's limit algbw is "
                        "its limits measured again in the same iterations, interleaved with it; "
                        "the limit/* rows are the limits measured on their own; perf/METRICS.md, "
                        "\"Replication benchmarks\"."))
    blocks += error_warnings(summary)
    rows = []
    for name, r in summary.iterrows():
        status = status_text(r)
        rows.append([name, dist.size_text(int(r["bytes"])), number(r["algbw"] / 1e9, ".3f"),
                     r["limit"] or "-", number(r["limit_algbw"] / 1e9, ".3f"),
                     number(r["ratio_to_limit"], ".3f"), str(r["n"]), status])
    blocks.append(("table", ["benchmark", "S", "algbw GB/s", "limit", "limit algbw GB/s",
                             "ratio_to_limit", "reps", "status"], rows))
    return blocks


def chart_blocks(charts_dir, out_dir):
    blocks = [("h2", "Charts")]
    if not charts_dir:
        return blocks + [("warn", "No charts directory was given (draw them with plot.py).")]
    if not os.path.isdir(charts_dir):
        return blocks + [("warn", f"Charts directory {charts_dir} does not exist.")]
    stems = sorted({os.path.splitext(f)[0] for f in os.listdir(charts_dir)
                    if f.endswith((".png", ".svg"))})
    known = [s for s, _ in CHARTS if s in stems] + [s for s in stems if s not in dict(CHARTS)]
    figures = []
    for stem in known:
        files = {ext: os.path.join(charts_dir, f"{stem}.{ext}") for ext in ("png", "svg")}
        links = {ext: quote(os.path.relpath(path, out_dir).replace(os.sep, "/"))
                 for ext, path in files.items() if os.path.exists(path)}
        figures.append((dict(CHARTS).get(stem, stem), links))
    if not figures:
        return blocks + [("warn", f"No PNG or SVG charts in {charts_dir}.")]
    return blocks + [("figures", figures)]


def summary_blocks(perf, cdoc, problems, dist_run=None):
    items = []
    if cdoc is not None:
        c = cdoc["counts"]
        items.append("conformance: " + ", ".join(f"{c.get(o, 0)} {o}" for o in conf.OUTCOMES))
    if perf is not None:
        results = [r["result"] for r in targets.evaluate(stats.summarize(perf.frame))]
        items.append("targets: " + ", ".join(f"{results.count(k)} {k}" for k in (
            targets.PASS, targets.MISS, targets.ERROR, targets.NOT_MEASURED)))
        summary = stats.summarize(perf.frame)
        items.append("perf benchmarks: " + ", ".join(
            f"{int((summary['status'] == s).sum())} {s}" for s in ("ok", "skipped", "error")))
        items += [f"ERROR {name}: {row['error']}" for name, row in summary.iterrows()
                  if row["status"] == "error"]
    if dist_run is not None:
        parts = dist.split(dist.summarize(dist_run.frame))
        for label, summary in zip(("dist", "replication"), parts):
            if label == "replication" and summary.empty:
                continue
            items.append(f"{label} benchmarks ({dist.world(dist_run)}): " + ", ".join(
                f"{int((summary['status'] == s).sum())} {s}" for s in ("ok", "skipped", "error")))
            items += [f"ERROR {name}: {row['error']}" for name, row in summary.iterrows()
                      if row["status"] == "error"]
    blocks = [("h2", "Summary"), ("list", items or ["no usable input"])]
    if problems:
        blocks += [("h3", "Inputs"), ("list", problems)]
    return blocks


def build(args):
    perf, peer, cdoc, dist_run, problems = load_inputs(args)
    blocks = [("h1", args.title)]
    blocks += summary_blocks(perf, cdoc, problems, dist_run)
    blocks += environment_blocks(perf, peer, cdoc)
    blocks += conformance_blocks(cdoc, args.conformance)
    for link in args.link or []:
        href, _, label = link.partition("=")
        blocks.append(("link", href, label or href))
    blocks += target_blocks(perf)
    blocks += perf_blocks(perf, "stagekit")
    blocks += perf_blocks(peer, "peer")
    blocks += dist_blocks(dist_run, args.dist)
    blocks += replication_blocks(dist_run, args.dist)
    blocks += chart_blocks(args.charts, args.out)
    return blocks, problems


CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;padding:3px 8px;
text-align:left;font-size:90%;vertical-align:top}th{background:#f0f0f0}
td.bad{background:#fdd;font-weight:bold}td.good{background:#dfd}td.muted{color:#777}
.warn{background:#fff3cd;border-left:4px solid #e0a800;padding:4px 8px}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #ddd}"""


def cell_class(value):
    if value == "PASS" or value == "pass":
        return "good"
    if value in BAD or value.startswith("ERROR"):
        return "bad"
    if value.startswith(("skipped", "not measured", "NOT MEASURED")):
        return "muted"
    return ""


def render_html(blocks):
    e = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{e(blocks[0][1])}</title><style>{CSS}</style></head><body>"]
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3", "p"):
            out.append(f"<{kind}>{e(block[1])}</{kind}>")
        elif kind == "warn":
            out.append(f'<p class="warn">{e(block[1])}</p>')
        elif kind == "link":
            out.append(f'<p><a href="{e(block[1])}">{e(block[2])}</a></p>')
        elif kind == "list":
            out.append("<ul>" + "".join(f"<li>{e(i)}</li>" for i in block[1]) + "</ul>")
        elif kind == "table":
            out.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in block[1]) + "</tr>")
            for row in block[2]:
                cells = (f'<td class="{cell_class(c)}">' if cell_class(c) else "<td>"
                         for c in row)
                out.append("<tr>" + "".join(f"{td}{e(c)}</td>" for td, c in zip(cells, row))
                           + "</tr>")
            out.append("</table>")
        elif kind == "figures":
            for title, links in block[1]:
                src = links.get("png") or links.get("svg")
                alt = " | ".join(f'<a href="{e(h)}">{x.upper()}</a>' for x, h in links.items())
                out.append(f'<figure><img src="{e(src)}" alt="{e(title)}">'
                           f"<figcaption>{e(title)} ({alt})</figcaption></figure>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def md_cell(value):
    return str(value).replace("|", "\\|").replace("\n", " ")


def render_markdown(blocks):
    out = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            out += ["#" * int(kind[1]) + " " + block[1], ""]
        elif kind == "p":
            out += [block[1], ""]
        elif kind == "warn":
            out += [f"> **{block[1]}**", ""]
        elif kind == "link":
            out += [f"[{block[2]}]({block[1]})", ""]
        elif kind == "list":
            out += [f"- {i}" for i in block[1]] + [""]
        elif kind == "table":
            out.append("| " + " | ".join(md_cell(h) for h in block[1]) + " |")
            out.append("|" + "---|" * len(block[1]))
            out += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in block[2]]
            out.append("")
        elif kind == "figures":
            for title, links in block[1]:
                src = links.get("png") or links.get("svg")
                out += [f"![{title}]({src})", "",
                        " · ".join(f"[{x.upper()}]({h})" for x, h in links.items()), ""]
    return "\n".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--perf", metavar="RESULT.json", help="the stagekit benchmark results")
    parser.add_argument("--peer", metavar="PEER.json", help="a peer's results (e.g. peer_torch.py)")
    parser.add_argument("--dist", metavar="DIST.json",
                        help="stagekit-dist-bench results (gather, distribute and replication "
                             "benchmarks)")
    parser.add_argument("--conformance", metavar="CONF_RESULTS.json",
                        help="conformance results.json (stagekit-conform --out)")
    parser.add_argument("--charts", metavar="DIR", help="directory with plot.py's charts")
    parser.add_argument("--out", required=True, metavar="DIR", help="where to write the report")
    parser.add_argument("--link", action="append", metavar="HREF=TEXT",
                        help="a link under the conformance section, e.g. to the side-by-side page "
                             "(repeatable)")
    parser.add_argument("--title", default="stagekit performance and conformance report",
                        help="report title")
    args = parser.parse_args(argv)
    blocks, problems = build(args)
    for problem in problems:
        print(f"report: note: {problem}", file=sys.stderr)
    try:
        os.makedirs(args.out, exist_ok=True)
        written = []
        for name, render in (("index.html", render_html), ("README.md", render_markdown)):
            path = os.path.join(args.out, name)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(render(blocks))
            written.append(path)
    except OSError as exc:
        print(f"report: cannot write the report into {args.out}: {exc}", file=sys.stderr)
        return 2
    print("\n".join(written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
