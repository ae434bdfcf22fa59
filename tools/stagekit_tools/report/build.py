"""The report's blocks in reading order: what a reader came for first, then the evidence.

    title, one line (git sha, date, host, stagekit build type, mode)
    headline  one row per implementation; where the machine bounds a number; the reasons some
              cases and benchmarks did not run (each said once, numbered); unusable inputs
    charts    drawn by stagekit_tools.plot
    details   conformance failures, targets (with the values of a second distributed run,
              --dist-also, next to the distributed verdicts), stage, distributed and replication
              benchmarks, environment
"""
import os
from urllib.parse import quote

from stagekit_tools import conformance as conf
from stagekit_tools.render import Footnotes, Note, Span
from stagekit_tools.report import details, headline, machine

CHARTS = (("throughput", "Throughput per layout and destination, cold vs warm"),
          ("ratio_to_limit", "Ratio to the copy limit"),
          ("dist_bandwidth", "Distributed: gather_state_dict, broadcast_state_dict and "
                             "distribute_tensors next to the all-gather, broadcast and memcpy "
                             "limits"),
          ("replication_bandwidth", "Replication: exchange and persist next to the exchange "
                                    "(MPI send/recv or memcpy) and sequential-write limits, and "
                                    "the ratio to them"),
          ("history", "Throughput over time"))
HEADLINE_KEY = ("Pass rate = cases that passed / cases that ran (not_supported and waived cases "
                "are not counted; their reasons are in the notes). \"expected\" marks failures "
                "the implementation's expectations file predicts. Targets: perf/METRICS.md. Key "
                "ratios: warm and cold staging are the geometric mean of ratio_to_limit over the "
                "stage benchmarks from CPU memory; against another implementation, the geometric "
                "mean of its median time over this one's on the stage benchmarks both measured; "
                "gather, broadcast and replication: ratio_to_limit at the largest size measured.")


def chart_blocks(charts_dir, out_dir):
    blocks = [("h2", "Charts", "charts-heading")]
    if not charts_dir:
        return blocks + [("warn", "No charts directory was given (draw them with "
                                  "python3 -m stagekit_tools.plot).")]
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


def tally(inputs):
    """{reason: (cases, implementations, benchmarks)} over every input."""
    counts = {}
    for results in inputs.conformance:
        for r in results.doc["results"]:
            if conf.outcome(r) == "not_supported":
                cases, impls, benches = counts.get(conf.reason(r), (0, set(), 0))
                counts[conf.reason(r)] = (cases + 1, impls | {results.label}, benches)
    for perf in (inputs.perf, *inputs.peers, inputs.dist):
        if perf is None:
            continue
        for why in perf.summary["skipped_reason"].dropna():
            cases, impls, benches = counts.get(why, (0, set(), 0))
            counts[why] = (cases, impls, benches + 1)
    return counts


def reason_notes(reasons, counts):
    """The numbered notes with what each reason applies to."""
    notes = []
    for note in reasons.notes():
        cases, impls, benches = counts.get(note.text, (0, set(), 0))
        parts = []
        if cases:
            parts.append(f"{cases} case{'s' * (cases != 1)} in {len(impls)} "
                         f"implementation{'s' * (len(impls) != 1)}")
        if benches:
            parts.append(f"{benches} benchmark{'s' * (benches != 1)}")
        notes.append(Note(note.anchor, note.label,
                          note.text + (f" ({', '.join(parts)})" if parts else "")))
    return notes


def cuda_reason(inputs):
    """The reason CUDA is unusable, as the inputs state it, or None."""
    for perf in (inputs.perf, inputs.dist):
        if perf is not None and perf.run.context.get("cuda") == "none":
            return perf.run.context.get("cuda_reason")
    for results in inputs.conformance:
        env = results.doc.get("environment", {})
        if isinstance(env, dict) and env.get("cuda") == "none":
            return env.get("cuda_reason")
    return None


def build(args, inputs):
    """All blocks of the report, in reading order."""
    reasons = Footnotes("reason")
    runs = [(p.role, p.run) for p in (inputs.perf, *inputs.peers, inputs.dist) if p is not None]
    impls = headline.implementations(inputs)
    top = [("h1", args.title), ("small", machine.summary_line(runs, inputs.conformance))]
    table = headline.headline_table(impls, reasons) if impls else \
        ("warn", "No usable input: nothing to report.")
    errors = []
    for perf in (inputs.perf, *inputs.peers, inputs.dist):
        if perf is not None:
            errors += details.error_warnings(perf.summary)
    # The tables come after the charts, but their footnote references are numbered first so the
    # headline's notes list every reason.
    links = [link.partition("=")[::2] for link in args.link or []]
    tables = details.conformance_blocks(inputs, links)
    tables += details.target_blocks(inputs.perf, reasons, inputs.dist, inputs.dist_also)
    tables += details.perf_blocks(inputs.perf, "stagekit", reasons)
    for i, peer in enumerate(inputs.peers):
        tables += details.perf_blocks(peer, f"peer{i + 1}", reasons)
    tables += details.dist_blocks(inputs, reasons)
    tables += details.replication_blocks(inputs, reasons)
    tables += [("h2", "Environment", "environment"),
               machine.environment_table(runs, inputs.conformance)]
    why_cuda = cuda_reason(inputs)
    bounds = machine.bound_notes([(role, run) for role, run in runs if role != "dist"],
                                 inputs.dist.run if inputs.dist else None,
                                 reasons.ref(why_cuda) if why_cuda else None,
                                 inputs.dist_also.run if inputs.dist_also else None)
    blocks = top + [("section", "headline"), ("h2", "Headline", "headline-heading"), table,
                    ("small", HEADLINE_KEY)] + errors
    if bounds:
        blocks += [("h3", "Where this machine bounds the numbers"), ("list", bounds)]
    notes = reason_notes(reasons, tally(inputs))
    if notes:
        blocks += [("h3", "Why some cases and benchmarks did not run"), ("notes", notes)]
    if inputs.problems:
        blocks += [("h3", "Inputs"), ("list", [Span(p, cls="muted") for p in inputs.problems])]
    blocks += [("end_section",), ("section", "charts")] + chart_blocks(args.charts, args.out)
    blocks += [("end_section",), ("section", "details")] + tables + [("end_section",)]
    return blocks
