"""The tables after the headline and the charts: conformance failures, targets, the stage
benchmarks of each implementation, the distributed and the replication benchmarks.

A skipped benchmark or a not-measured target shows "skipped" / "not measured" with a footnote
reference to its reason (said once in the report's notes), never the reason itself.  Each function
returns a list of blocks.  Needs pandas (the summaries it reads).
"""
from stagekit_tools import case_ids, dist, targets
from stagekit_tools import conformance as conf
from stagekit_tools.names import size_text
from stagekit_tools.render import Span
from stagekit_tools.report.headline import not_measured_reason, target_rows


REASON_CHARS = 160


def number(value, fmt):
    return "-" if value is None or value != value else format(value, fmt)


def status_cell(row, reasons):
    """ok, skipped [n] or ERROR: message of a summary row."""
    if row["status"] == "ok":
        return "ok"
    if row["status"] == "skipped":
        return Span("skipped", cls="muted", notes=(reasons.ref(row["skipped_reason"]),))
    return f"ERROR: {row['error']}"


def error_warnings(summary):
    """One warning block per benchmark of a summary that ended in an error (the headline shows
    them; the tables say ERROR in the status column)."""
    return [("warn", f"ERROR {name}: {row['error']}")
            for name, row in summary[summary["status"] == "error"].iterrows()]


def shorten(text, limit=REASON_CHARS):
    """Span of text cut to limit characters, the whole text on hover."""
    if len(text) <= limit:
        return Span(text)
    return Span(text[:limit].rsplit(" ", 1)[0] + " …", title=text)


def conformance_blocks(inputs, links):
    """Every failure no expectation predicts, in full; the expected ones (the example plugins')
    grouped by implementation, area.feature and outcome, folded away."""
    blocks = [("h2", "Conformance: failures", "conformance")]
    for href, label in links:
        blocks.append(("p", Span(label or href, href=href)))
    if not inputs.conformance:
        return blocks + [("warn", "No usable conformance results (see Inputs).")]
    unexpected, expected = [], {}
    for results in inputs.conformance:
        for r in conf.failures(results.doc):
            ident = str(r.get("id", "?"))
            if r.get("verdict") == "ok":
                key = (results.label, case_ids.parse(ident).group, conf.outcome(r))
                expected.setdefault(key, []).append(r)
            else:
                unexpected.append([results.label, ident, conf.outcome(r),
                                   str(r.get("verdict", "")) or "-", conf.reason(r)])
    sizes = sorted({len(c.doc["results"]) for c in inputs.conformance})
    each = f"{sizes[0]} cases each" if len(sizes) == 1 else f"{sizes[0]} to {sizes[-1]} cases"
    blocks.append(("small", "Every fail, crash and timeout of the "
                            f"{len(inputs.conformance)} conformance results given ({each}); "
                            "not_supported cases are counted in the headline, their reasons in "
                            "the notes."))
    if unexpected:
        blocks.append(("table", ["implementation", "case", "outcome", "verdict", "reason"],
                       unexpected))
    else:
        blocks.append(("p", "No unexpected failure." if expected else "No failures."))
    if expected:
        cases = sum(len(v) for v in expected.values())
        owners = len({label for label, _, _ in expected})
        rows = [[label, Span(f"{group} ({len(found)} case{'s' * (len(found) != 1)})",
                             title="\n".join(str(r.get("id")) for r in found)),
                 Span(outcome, cls="expected"), shorten(conf.reason(found[0]))]
                for (label, group, outcome), found in expected.items()]
        blocks.append(("details", f"Expected failures: {cases} cases of {owners} "
                                  f"implementation{'s' * (owners != 1)}, predicted by their "
                                  "expectations (grouped by area.feature; the first case's "
                                  "reason)",
                       [("table", ["implementation", "cases", "outcome", "reason"], rows)]))
    return blocks


def also_header(run):
    """The column of a second distributed run in the targets table, named after its world size:
    "np 4" under mpirun, its world ("thread, 4 ranks") otherwise."""
    size = run.context.get("world_size")
    if run.context.get("world_backend") == "mpi" and size not in (None, ""):
        return f"np {size}"
    return run.world()


def target_blocks(perf, reasons, dist_perf=None, dist_also=None):
    """The targets table; with dist_also (a second distributed run, --dist-also) and dist_perf,
    one more column with its value of each distributed target ("-" where it has none), the
    verdict staying dist_perf's."""
    blocks = [("h2", "Targets", "targets")]
    if perf is None and dist_perf is None:
        return blocks + [("warn", "No usable perf result file: targets not evaluated.")]
    sources = [f"{p.run.path} ({p.run.describe()})" for p in (perf, dist_perf) if p is not None]
    blocks.append(("small", f"Evaluated from {' and '.join(sources)}; "
                            "perf/METRICS.md defines them."))
    also = header = None
    if dist_perf is not None and dist_also is not None:
        header = also_header(dist_also.run)
        also = targets.measured_values(targets.evaluate_dist(
            dist_also.summary.to_dict("records"), dist_also.run.context.get("world_backend")))
        blocks.append(("small", f"{header}: the same ratio_to_limit of each distributed target "
                                f"in {dist_also.run.path} ({dist_also.run.world()}), shown next "
                                f"to the verdicts of {dist_perf.run.world()}, not judged; \"-\" "
                                "where that run did not measure it."))
    dist_patterns = {t.pattern for t in targets.DIST_TARGETS}
    rows = []
    for r in target_rows(perf, dist_perf):
        if r["result"] == targets.NOT_MEASURED:
            result = Span("not measured", cls="muted",
                          notes=(reasons.ref(not_measured_reason(r)),))
            note = "-"
        else:
            result, note = r["result"], r["note"] or "-"
        row = [f"{r['pattern']}: {r['target']}", r["benchmark"], r["measured"] or "-"]
        if also is not None:  # stage targets: not a distributed run's, left blank
            row.append(also.get((r["pattern"], r["benchmark"])) or "-"
                       if r["pattern"] in dist_patterns else "")
        rows.append(row + [result, note])
    columns = ["target", "benchmark", "measured"] + ([header] if also is not None else [])
    return blocks + [("table", columns + ["result", "note"], rows)]


def perf_blocks(perf, role, reasons):
    blocks = [("h2", f"Stage benchmarks: {perf.name if perf else role}", f"perf-{role}")]
    if perf is None:
        return blocks + [("warn", f"No usable {role} result file (see Inputs).")]
    context = perf.run.context
    blocks.append(("small", f"{perf.run.path}: {perf.run.describe()}, mode "
                            f"{context.get('mode', '-')}. GB/s = 10^9 bytes/s, medians over the "
                            "repetitions; ratio_to_limit = throughput / the limit's throughput in "
                            "the same run."))
    converted = perf.summary["conversion_ns_per_tensor_median"].notna().any()
    if converted:
        blocks.append(("small", "conversion ns/tensor: outside the clock, converting the state "
                                "dict to the stager's framework and the result back, per tensor."))
    rows = [[name, number(r["bytes_per_second_median"] / 1e9, ".2f"),
             number(r["ratio_to_limit_median"], ".3f"),
             number(r["overhead_ns_per_tensor_median"], ".0f")]
            + ([number(r["conversion_ns_per_tensor_median"], ".0f")] if converted else [])
            + [r["limit"] or "-", str(r["n"]), status_cell(r, reasons)]
            for name, r in perf.summary.iterrows()]
    header = ["benchmark", "GB/s (median)", "ratio_to_limit", "overhead ns/tensor"]
    header += ["conversion ns/tensor"] if converted else []
    return blocks + [("table", header + ["limit", "reps", "status"], rows)]


def dist_blocks(inputs, reasons):
    blocks = [("h2", "Distributed benchmarks (stagekit-dist-bench)", "dist")]
    perf = inputs.dist
    if perf is None:
        if inputs.dist_path:
            return blocks + [("warn", f"No usable dist result file ({inputs.dist_path} could not "
                                      "be used; see Inputs).")] + also_blocks(inputs, 0)
        return blocks + [("warn", "No dist result file was given (ci/perf-report.sh runs "
                                  "stagekit-dist-bench when it is built; its log says why it "
                                  "did not run or failed).")] + also_blocks(inputs, 0)
    summary, _ = dist.split(perf.summary)
    blocks.append(("small", f"{perf.run.path}: {perf.run.describe()}, mode "
                            f"{perf.run.context.get('mode', '-')}, world {perf.run.world()}. "
                            "algbw = S / time, busbw = algbw x (N-1)/N (nccl-tests' all-gather "
                            "factor; busbw = algbw for a broadcast); an iteration's time is the "
                            "slowest rank's; ratio = algbw / the limit's algbw for the same S in "
                            "this run."))
    blocks.append(("small", "Broadcasts from rank 0: dist/broadcast is the communicator's own "
                            "broadcast of S bytes in place, dist/broadcast_state_dict/one and "
                            "/many broadcast_state_dict of one float32 tensor of S bytes or of 64 "
                            "tensors of S/64 bytes; both are divided by the engine's broadcast of "
                            "S bytes, limit/mpi_bcast (MPI_Bcast) under mpirun, limit/memcpy_bcast "
                            "(every rank copies S bytes) in a thread world."))
    rows = [[name, size_text(int(r["bytes"])), number(r["algbw"] / 1e9, ".3f"),
             number(r["busbw"] / 1e9, ".3f"), r["limit"] or "-",
             number(r["limit_algbw"] / 1e9, ".3f"), number(r["ratio_to_limit"], ".3f"),
             str(r["n"]), status_cell(r, reasons)] for name, r in summary.iterrows()]
    blocks += also_blocks(inputs, 0)
    return blocks + [("table", ["benchmark", "S", "algbw GB/s", "busbw GB/s", "limit",
                                "limit algbw GB/s", "ratio_to_limit", "reps", "status"], rows)]


def also_blocks(inputs, part):
    """One line naming the second distributed run (--dist-also), with the benchmarks of its part
    (dist.split: 0 the utilities, 1 the replication) that ended in an error; a warning when it
    was given and could not be used; nothing when none was given."""
    also = inputs.dist_also
    if also is None:
        return [("warn", f"The second dist result file {inputs.dist_also_path} could not be used "
                         "(see Inputs).")] if inputs.dist_also_path else []
    header = also_header(also.run)
    text = (f"Also run at {also.run.world()}: {also.run.path} ({also.run.describe()}, mode "
            f"{also.run.context.get('mode', '-')}). "
            + (f"Its ratio_to_limit of each distributed target is the targets table's {header} "
               "column; its other figures are not shown."
               if inputs.dist is not None else
               "Its figures are not shown: they stand next to the verdicts of the dist result "
               "file, which is missing."))
    rows = dist.split(also.summary)[part]
    errors = list(rows.index[rows["status"] == "error"])
    if errors:
        text += (f" {len(errors)} of its benchmarks here ended in an error: "
                 f"{', '.join(errors)}.")
    return [("small", text)]


def replication_blocks(inputs, reasons):
    blocks = [("h2", "Replication benchmarks (stagekit-dist-bench)", "replication")]
    perf = inputs.dist
    if perf is None:
        return blocks + [("warn", "No replication results: they come from the dist result file"
                                  + (f" ({inputs.dist_path} could not be used)."
                                     if inputs.dist_path else ", and none was given."))]
    _, summary = dist.split(perf.summary)
    if summary.empty:
        return blocks + [("warn", f"{perf.run.path} holds no replication benchmarks "
                                  "(limit/mpi_sendrecv or limit/memcpy_exchange, limit/seq_write, "
                                  "replicate/*): a stagekit-dist-bench from before them?")]
    blocks.append(("small", f"World {perf.run.world()}. S = the bytes of one rank's state dict; "
                            "algbw = S / time, an iteration's time being the slowest rank's. "
                            "replicate/exchange is divided by the exchange limit: "
                            "limit/mpi_sendrecv under mpirun (S bytes each way between partner "
                            "ranks by MPI_Isend/MPI_Irecv, both directions at once), "
                            "limit/memcpy_exchange in a thread world (every rank copies its "
                            "partner's S bytes by memcpy); replicate/persist by limit/seq_write (S "
                            "bytes written and fsynced by every rank at once), replicate/stage by "
                            "both one after the other (1 / (1/exchange + 1/seq_write)). The other "
                            "world's exchange limit is not supported. A replicate row's limit "
                            "algbw is its limits measured again in the same iterations, "
                            "interleaved with "
                            "it; the limit/* rows are the limits measured on their own; "
                            "perf/METRICS.md, \"Replication benchmarks\"."))
    rows = [[name, size_text(int(r["bytes"])), number(r["algbw"] / 1e9, ".3f"), r["limit"] or "-",
             number(r["limit_algbw"] / 1e9, ".3f"), number(r["ratio_to_limit"], ".3f"),
             str(r["n"]), status_cell(r, reasons)] for name, r in summary.iterrows()]
    blocks += also_blocks(inputs, 1)
    return blocks + [("table", ["benchmark", "S", "algbw GB/s", "limit", "limit algbw GB/s",
                                "ratio_to_limit", "reps", "status"], rows)]
