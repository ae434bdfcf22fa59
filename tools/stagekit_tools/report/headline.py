"""The headline of the report: one row per implementation given, whatever the inputs say of it.

An implementation is named by its conformance `implementation.name` and its benchmark context
`implementation`; inputs with the same name are one row (the reference's conformance results, its
stage benchmarks and its distributed benchmarks), shown under the conformance label when there is
one.  Columns: the conformance pass rate per area (stager, utils, replication: passed / cases
that ran, not counting not_supported and waived ones), how the outcomes compare with the
expectations given to stagekit-conform, the target verdicts, and the key ratios (warm and cold
staging against the copy limit, against the peer, gather, broadcast and replication against
their limits).
A reason for not running (a not_supported case, a skipped benchmark) is a footnote reference.
Needs pandas (the summaries it reads).
"""
import math
from dataclasses import dataclass

from stagekit_tools import case_ids, stats, targets
from stagekit_tools import conformance as conf
from stagekit_tools.names import size_text
from stagekit_tools.render import Lines, Span

DASH = Span("—", cls="muted")


@dataclass
class Implementation:
    """Everything the inputs say about one implementation."""
    label: str
    name: str
    conformance: object = None   # inputs.Conformance
    perf: object = None          # inputs.Perf of stage benchmarks (stagekit or peer)
    dist: object = None          # inputs.Perf of stagekit-dist-bench

    @property
    def version(self):
        for perf in (self.perf, self.dist):
            if perf is not None and perf.run.context.get("implementation_version"):
                return str(perf.run.context["implementation_version"])
        if self.conformance is not None:
            impl = self.conformance.doc.get("implementation")
            if isinstance(impl, dict) and impl.get("version"):
                return str(impl["version"])
        return ""


def implementations(inputs):
    """[Implementation] in reading order: the benchmarked ones first, then the conformance-only
    ones in the order given."""
    found = []

    def named(name):
        for impl in found:
            if impl.name == name:
                return impl
        found.append(Implementation(name, name))
        return found[-1]

    for perf in (inputs.perf, *inputs.peers):
        if perf is not None:
            named(perf.name).perf = perf
    if inputs.dist is not None:
        named(inputs.dist.name).dist = inputs.dist
    for results in inputs.conformance:
        impl = named(results.name)
        if impl.conformance is not None:  # a second file of the same implementation
            found.append(Implementation(results.label, results.name))
            impl = found[-1]
        impl.conformance, impl.label = results, results.label
    return found


def areas(impls):
    """The areas with cases in any conformance input, in case_ids order."""
    present = {case_ids.area_of(str(r.get("id", ""))) for impl in impls if impl.conformance
               for r in impl.conformance.doc["results"]}
    return [a for a in case_ids.AREAS if a in present] + sorted(present - set(case_ids.AREAS))


def _percent(part, whole):
    """A percentage that reads 100% only when part == whole."""
    value = 100.0 * part / whole
    return "100%" if part == whole else f"{min(math.floor(value), 99)}%"


def area_cell(results, reasons):
    """The pass rate of one implementation's cases of one area."""
    if not results:
        return DASH
    counts = conf.count_outcomes(results)
    judged = len(results) - counts["not_supported"] - counts["waived"]
    failing = [r for r in results if conf.outcome(r) in conf.FAILING]
    expected = all(r.get("verdict") == "ok" for r in failing)
    cls = "good" if not failing else ("expected" if expected else "bad")
    notes = tuple(sorted((reasons.ref(why) for _, why in conf.not_supported_reasons(
        {"results": results})), key=lambda note: int(note.label)))
    not_supported = Span(f"{counts['not_supported']} not supported", cls="muted", notes=notes)
    if not judged:  # one line: nothing ran, and why
        if counts["not_supported"] == len(results):
            return Span(f"all {len(results)} not supported", cls="muted", notes=notes)
        return Span(f"none ran ({counts['not_supported']} not supported, {counts['waived']} "
                    "waived)", cls="muted", notes=notes)
    first = [Span(_percent(counts["pass"], judged), cls=cls),
             f" {counts['pass']} of {judged} pass"]
    second = []
    if failing:
        bad = ", ".join(f"{counts[o]} {o}" for o in conf.FAILING if counts[o])
        second.append(Span(bad + (" (expected)" if expected else ""), cls=cls))
    if counts["waived"]:
        second.append(Span(f"{counts['waived']} waived", cls="muted"))
    if counts["not_supported"]:
        second.append(not_supported)
    separated = [part for span in second for part in (Span(" · ", cls="muted"), span)][1:]
    return Lines((first, separated)) if second else Lines((first,))


def expectations_cell(results):
    """How the outcomes compare with the expectations stagekit-conform was given."""
    verdicts = conf.count_verdicts(results)
    if not verdicts:
        return DASH
    differing = {v: n for v, n in verdicts.items() if v != "ok"}
    if not differing:
        return Lines((Span("as expected", cls="good"), f"{verdicts['ok']} cases"))
    cls = "expected" if set(differing) == {"FIX"} else "bad"
    return Lines(tuple([Span(", ".join(f"{n} {v}" for v, n in differing.items()), cls=cls)]
                       + ([f"{verdicts['ok']} as expected"] if verdicts.get("ok") else [])))


def target_rows(perf, dist_perf=None):
    """targets.evaluate over a stage summary (rows as dicts), then the distributed targets over
    the dist summary when there is one."""
    rows = targets.evaluate(perf.summary.to_dict("records")) if perf is not None else []
    if dist_perf is not None:
        rows += targets.evaluate_dist(dist_perf.summary.to_dict("records"),
                                      dist_perf.run.context.get("world_backend"))
    return rows


def targets_cell(perf, reasons, dist_perf=None):
    if perf is None and dist_perf is None:
        return DASH
    rows = target_rows(perf, dist_perf)
    counts = targets.result_counts(rows)
    bad = counts[targets.MISS] or counts[targets.ERROR]
    cls = "bad" if bad else ("good" if counts[targets.PASS] else "muted")
    shown = [f"{counts[k]} {k}" for k in (targets.PASS, targets.MISS, targets.ERROR) if counts[k]]
    lines = [Span(" · ".join(shown) or "none measured", cls=cls)]
    if counts[targets.NOT_MEASURED]:
        notes = tuple(sorted(dict.fromkeys(reasons.ref(not_measured_reason(r)) for r in rows
                                           if r["result"] == targets.NOT_MEASURED),
                             key=lambda note: int(note.label)))
        lines.append(Span(f"{counts[targets.NOT_MEASURED]} not measured", cls="muted",
                          notes=notes))
    return Lines(tuple(lines))


def not_measured_reason(row):
    """The reason of a NOT MEASURED target row, without its "not measured: " prefix."""
    note = row["note"]
    return note[len("not measured: "):] if note.startswith("not measured: ") else note


def _ok(summary):
    return summary[summary["status"] == "ok"]


def stage_ratio(summary, mode):
    """(geomean of ratio_to_limit, n) over the measured stage benchmarks from CPU of a mode."""
    rows = _ok(summary)
    rows = rows[(rows["kind"] == "stage") & (rows["mode"] == mode) & (rows["src"] == "cpu")]
    values = [v for v in rows["ratio_to_limit_median"] if v == v]
    return stats.geomean(values), len(values)


def speedup(mine, other):
    """(geomean of other's median time / mine, n) over the stage benchmarks both measured."""
    a, b = _ok(mine.summary), _ok(other.summary)
    common = [n for n in a.index if n in b.index and a.loc[n, "kind"] == "stage"]
    ratios = [b.loc[n, "real_time_median_s"] / a.loc[n, "real_time_median_s"] for n in common
              if a.loc[n, "real_time_median_s"] > 0]
    return stats.geomean(ratios), len(ratios)


def largest(summary, kind, op):
    """(geomean of ratio_to_limit, S) of the measured dist rows of kind/op at their largest S."""
    rows = _ok(summary)
    rows = rows[(rows["kind"] == kind) & (rows["op"] == op)]
    if rows.empty:
        return math.nan, 0
    size = int(rows["bytes"].max())
    return stats.geomean(list(rows[rows["bytes"] == size]["ratio_to_limit"])), size


def ratios_cell(impl, others):
    """The key ratios of one implementation; others: the other benchmarked Implementations."""
    lines = []
    if impl.perf is not None:
        for mode in ("warm", "cold"):
            value, n = stage_ratio(impl.perf.summary, mode)
            if n:
                lines.append(f"{mode} staging: {value:.2f}× the copy limit")
        for other in others:
            value, n = speedup(impl.perf, other.perf)
            if n:
                lines.append(f"{value:.2f}× {other.name}'s throughput")
    if impl.dist is not None:
        for kind, op, limit in (("dist", "gather_state_dict", "the engine's all-gather"),
                                ("dist", "broadcast_state_dict", "the engine's broadcast"),
                                ("replicate", "exchange", "the engine's exchange"),
                                ("replicate", "stage", "the engine's exchange + write")):
            value, size = largest(impl.dist.summary, kind, op)
            if size and value == value:
                lines.append(f"{op}: {value:.2f}× {limit}, {size_text(size)}")
    return Lines(tuple(lines)) if lines else DASH


def headline_table(impls, reasons):
    """("table", headers, rows) of the headline; columns only for what some input holds."""
    area_list = areas(impls)
    with_verdicts = any(impl.conformance and conf.count_verdicts(impl.conformance.doc["results"])
                        for impl in impls)
    benchmarked = [impl for impl in impls if impl.perf is not None]
    headers = ["implementation"] + [f"{area} cases" for area in area_list]
    headers += ["vs expectations"] if with_verdicts else []
    headers += ["targets"] if benchmarked else []
    headers += ["key ratios"] if benchmarked or any(impl.dist for impl in impls) else []
    rows = []
    for impl in impls:
        name = [Span(impl.label, cls="big")]
        detail = " ".join(x for x in (impl.name if impl.name != impl.label else "", impl.version)
                          if x)
        row = [Lines((name, Span(detail, cls="muted"))) if detail else name]
        results = impl.conformance.doc["results"] if impl.conformance else None
        for area in area_list:
            row.append(area_cell([r for r in results if case_ids.area_of(str(r.get("id", "")))
                                  == area], reasons) if results is not None else DASH)
        if with_verdicts:
            row.append(expectations_cell(results) if results is not None else DASH)
        if benchmarked:
            row.append(targets_cell(impl.perf, reasons, impl.dist))
        if len(headers) > len(row):
            row.append(ratios_cell(impl, [o for o in benchmarked if o is not impl]))
        rows.append(row)
    return ("table", headers, rows, "wide")
