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


def target_blocks(perf, reasons, dist_perf=None):
    blocks = [("h2", "Targets", "targets")]
    if perf is None and dist_perf is None:
        return blocks + [("warn", "No usable perf result file: targets not evaluated.")]
    sources = [f"{p.run.path} ({p.run.describe()})" for p in (perf, dist_perf) if p is not None]
    blocks.append(("small", f"Evaluated from {' and '.join(sources)}; "
                            "perf/METRICS.md defines them."))
    rows = []
    for r in target_rows(perf, dist_perf):
        if r["result"] == targets.NOT_MEASURED:
            result = Span("not measured", cls="muted",
                          notes=(reasons.ref(not_measured_reason(r)),))
            note = "-"
        else:
            result, note = r["result"], r["note"] or "-"
        rows.append([f"{r['pattern']}: {r['target']}", r["benchmark"], r["measured"] or "-",
                     result, note])
    return blocks + [("table", ["target", "benchmark", "measured", "result", "note"], rows)]


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
                                      "be used; see Inputs).")]
        return blocks + [("warn", "No dist result file was given (ci/perf-report.sh runs "
                                  "stagekit-dist-bench when it is built; its log says why it "
                                  "did not run or failed).")]
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
    return blocks + [("table", ["benchmark", "S", "algbw GB/s", "busbw GB/s", "limit",
                                "limit algbw GB/s", "ratio_to_limit", "reps", "status"], rows)]


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
    return blocks + [("table", ["benchmark", "S", "algbw GB/s", "limit", "limit algbw GB/s",
                                "ratio_to_limit", "reps", "status"], rows)]
