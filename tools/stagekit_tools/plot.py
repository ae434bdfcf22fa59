"""Draw the stagekit perf charts, each as PNG and SVG, into --out.

- throughput:      GB/s per (layout, destination), cold and warm side by side, one bar
                   series per implementation and mode (median; whiskers: interquartile range),
                   one panel per source device;
- ratio_to_limit:  each stage benchmark's median ratio to the copy limit of its own run, with
                   a reference line at each ratio bound of the targets (targets.py);
- history:         with --history, median GB/s per night of every stage benchmark, one panel
                   per layout;
- dist_bandwidth:  with --dist, the stagekit-dist-bench results: algbw (solid) and busbw
                   (dashed, log scale) of gather_state_dict per layout against S, next to the
                   all-gather limits of the same run, broadcast_state_dict per layout and the
                   communicator's broadcast next to the broadcast limits, and distribute_tensors
                   next to a memcpy of the local block (medians);
- replication_bandwidth: with --dist, the replication benchmarks of the same file: algbw of
                   replicate/exchange next to the exchange limit the run measured
                   (limit/mpi_sendrecv under mpirun, limit/memcpy_exchange in a thread world),
                   of replicate/persist next to limit/seq_write (against S, medians), and the
                   ratio_to_limit of exchange, persist and stage per S.

With --only, just the charts named.  Several result files (e.g. stagekit and a pytorch peer) are
drawn side by side.  Prints the files written.  Exit status 2 when an input cannot be used.  Draws
with matplotlib's Figure API (no pyplot, no GUI backend).
"""
import argparse
import os
import sys
import textwrap

import matplotlib
import pandas as pd
from matplotlib import ticker
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from stagekit_tools import cli, dist, names, stats, targets
from stagekit_tools.bench_file import PerfFileError
from stagekit_tools.history import load_history
from stagekit_tools.perf_frame import load_run

matplotlib.rcParams.update({"svg.hashsalt": "stagekit", "figure.dpi": 100, "axes.grid": True,
                            "grid.alpha": 0.3, "axes.axisbelow": True})
GB = 1e9
COLORS = matplotlib.colormaps["tab10"].colors
# The ratio_to_limit targets' bounds, drawn as lines on the ratio chart.
BOUND_COLORS = ("green", "orange", "purple", "brown")
# The limit a panel's benchmarks are divided by, drawn in black (other limits in gray).
MAIN_LIMITS = tuple(limit for engines in names.WORLD_ENGINES.values()
                    for limit in engines.values()) + ("limit/seq_write",)
# The replication benchmarks of the ratio panel (each labelled with the limits its rows name).
REPLICATION_RATIOS = ("exchange", "persist", "stage")
# What each world's exchange limit is, for the replication chart's first panel.
EXCHANGE_ENGINES = {"limit/mpi_sendrecv": "MPI_Isend/MPI_Irecv",
                    "limit/memcpy_exchange": "memcpy in one address space"}


def labelled(runs):
    """[(label, run)] with unique labels: the implementation, plus the file name if needed."""
    impls = [run.implementation for run in runs]
    return [(impl if impls.count(impl) == 1 else
             f"{impl} ({os.path.splitext(os.path.basename(run.path))[0]})", run)
            for impl, run in zip(impls, runs)]


def gbps(rows):
    """Per-repetition throughput in GB/s (bytes / real_time where the counter is absent)."""
    return rows["bytes_per_second"].fillna(rows["bytes"] / rows["real_time_s"]) / GB


def _empty(ax, message):
    message = "\n".join(textwrap.fill(line, 100) for line in message.splitlines())
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, fontsize=9)
    ax.set_axis_off()


def _status_text(ax, x, rows):
    status = "error" if rows["error"].notna().any() else "skipped"
    ax.text(x, 0, status, rotation=90, ha="center", va="bottom", fontsize=7,
            color="red" if status == "error" else "gray")


def _series_style(impls, impl, mode):
    color = COLORS[impls.index(impl) % len(COLORS)]
    return {"facecolor": color, "edgecolor": color, "alpha": 0.45 if mode == "cold" else 0.95,
            "hatch": "//" if mode == "cold" else None}


def _throughput_panel(ax, rows, impls, series):
    """Bars of one (src, layout): a group per destination, a bar per (implementation, mode)."""
    dsts = sorted(rows["dst"].unique(), key=lambda d: names.sort_key(f"stage/cpu_to_{d}/x/cold"))
    width = 0.8 / len(series)
    for si, (impl, mode) in enumerate(series):
        xs, heights, low, high = [], [], [], []
        for gi, dst in enumerate(dsts):
            cell = rows[(rows["impl"] == impl) & (rows["dst"] == dst) & (rows["mode"] == mode)]
            if cell.empty:
                continue
            x = gi - 0.4 + width * (si + 0.5)
            ok = stats.measured(cell)
            if ok.empty or cell["error"].notna().any():
                _status_text(ax, x, cell)
                continue
            values = gbps(ok)
            xs.append(x)
            heights.append(values.median())
            low.append(values.median() - values.quantile(0.25))
            high.append(values.quantile(0.75) - values.median())
        ax.bar(xs, heights, width, yerr=[low, high], capsize=2, **_series_style(impls, impl, mode))
    ax.set_xlim(-0.5, len(dsts) - 0.5)
    ax.set_xticks(range(len(dsts)))
    ax.set_xticklabels([f"to {dst}" for dst in dsts], fontsize=9)
    ax.set_ylabel("GB/s (10^9 bytes/s)")


def throughput_figure(labelled_runs):
    """One panel per (source, layout) with data; a text panel per source with none."""
    frame = pd.concat([run.frame.assign(impl=label) for label, run in labelled_runs],
                      ignore_index=True)
    stage = frame[frame["kind"] == "stage"]
    impls = [label for label, _ in labelled_runs]
    series = [(impl, mode) for impl in impls for mode in names.MODES]
    panels = []
    for src in sorted(stage["src"].unique(), key=lambda s: names.sort_key(f"stage/{s}_to_x/x/x")):
        rows = stage[stage["src"] == src]
        if stats.measured(rows).empty:
            # the gist of each reason (the report's notes give them in full)
            reasons = sorted({why.split(":")[0] for why in set(rows["error"].dropna())
                              | set(rows["skipped_reason"].dropna())})
            panels.append((src, None, "\n".join(reasons)))
            continue
        for layout in sorted(rows["layout"].unique(),
                             key=lambda x: names.sort_key(f"stage/cpu_to_x/{x}/cold")):
            panels.append((src, layout, rows[rows["layout"] == layout]))
    heights = [3.0 if layout else 0.8 for _, layout, _ in panels] or [3.0]
    fig = Figure(figsize=(10.0, sum(heights) + 0.8))
    axes = fig.subplots(len(heights), 1, squeeze=False, gridspec_kw={"height_ratios": heights})
    if not panels:
        _empty(axes[0, 0], "no stage benchmarks in the given files")
        return fig
    for ax, (src, layout, content) in zip(axes[:, 0], panels):
        if layout is None:
            _empty(ax, f"no measured stage benchmark from {src} memory: {content}")
            continue
        _throughput_panel(ax, content, impls, series)
        ax.set_title(f"{layout} state dict, from {src} memory", fontsize=10)
    handles = [Patch(label=f"{impl}, {mode}", **_series_style(impls, impl, mode))
               for impl, mode in series]
    fig.legend(handles=handles, loc="upper center", ncol=min(4, len(handles)), fontsize=8,
               bbox_to_anchor=(0.5, 1.0))
    fig.suptitle("Staging throughput, cold vs warm (bar: median, whisker: interquartile range)",
                 y=1.0 + 0.35 / fig.get_figheight())
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.45 / fig.get_figheight()))
    return fig


def ratio_figure(labelled_runs):
    summaries = [(label, stats.summarize(run.frame)) for label, run in labelled_runs]
    bench = sorted({n for _, s in summaries for n, r in s.iterrows()
                    if r["kind"] == "stage" and pd.notna(r["ratio_to_limit_median"])},
                   key=names.sort_key)
    fig = Figure(figsize=(9.0, 1.2 + 0.32 * max(1, len(bench)) * len(summaries)))
    ax = fig.subplots()
    if not bench:
        _empty(ax, "no stage benchmark with a ratio_to_limit in the given files")
        return fig
    height = 0.8 / len(summaries)
    top = 1.05
    for i, (label, summary) in enumerate(summaries):
        ys = [b - 0.4 + height * (i + 0.5) for b in range(len(bench))]
        values = [summary.loc[n, "ratio_to_limit_median"] if n in summary.index else float("nan")
                  for n in bench]
        ax.barh(ys, values, height, color=COLORS[i % len(COLORS)], label=label)
        for y, value, name in zip(ys, values, bench):
            if pd.notna(value):
                ax.text(value, y, f" vs {summary.loc[name, 'limit']}", va="center", fontsize=6)
        top = max([top] + [v * 1.45 for v in values if pd.notna(v)])
    for (bound, label), color in zip(targets.ratio_bounds(), BOUND_COLORS):
        ax.axvline(bound, color=color, linestyle="--", label=f"{bound:.2f} target ({label})")
    ax.set_yticks(range(len(bench)))
    ax.set_yticklabels(bench, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, top)
    ax.set_xlabel("ratio_to_limit = stage throughput / limit throughput of the same run")
    ax.set_title("Staging throughput relative to the copy limit (median per benchmark)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08 - 0.5 / len(bench)))
    fig.tight_layout()
    return fig


def history_figure(runs):
    points = []
    for run in runs:
        for name, row in stats.summarize(run.frame).iterrows():
            if row["kind"] == "stage" and row["status"] == "ok":
                value = row["bytes_per_second_median"]
                if pd.isna(value):
                    value = row["bytes"] / row["real_time_median_s"]
                points.append({"night": run.night, "benchmark": name, "layout": row["layout"],
                               "gbps": value / GB})
    frame = pd.DataFrame(points, columns=["night", "benchmark", "layout", "gbps"])
    layouts = [x for x in names.LAYOUTS if x in set(frame["layout"])]
    layouts += sorted(set(frame["layout"]) - set(layouts))
    fig = Figure(figsize=(10.0, 3.2 * max(1, len(layouts))))
    axes = fig.subplots(max(1, len(layouts)), 1, squeeze=False, sharex=True)
    if not layouts:
        _empty(axes[0, 0], "no measured stage benchmark in the history")
        return fig
    for ax, layout in zip(axes[:, 0], layouts):
        sub = frame[frame["layout"] == layout]
        for name in sorted(sub["benchmark"].unique(), key=names.sort_key):
            line = sub[sub["benchmark"] == name].sort_values("night")
            p = names.parse(name)
            ax.plot(line["night"], line["gbps"], marker="o", markersize=3,
                    label=f"{p['src']} to {p['dst']}, {p['mode']}")
        ax.set_ylim(bottom=0)
        ax.set_ylabel("GB/s (10^9 bytes/s)")
        ax.set_title(f"{layout}: median staging throughput per night")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axes[-1, 0].set_xlabel("night (context.date, UTC)")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def _dist_panel(ax, summary, ops, title,
                xlabel="S = total bytes (gathered tensor / full tensor)", log_y=True):
    """Lines of algbw (and busbw where reported) against S for the benchmarks of `ops`."""
    rows = summary[summary["op"].isin(ops)]
    notes, drawn = [], 0
    for i, label in enumerate(dict.fromkeys(dist.series_label(r) for _, r in rows.iterrows())):
        series = rows[[dist.series_label(r) == label for _, r in rows.iterrows()]]
        ok = series[series["status"] == "ok"].sort_values("bytes")
        bad = series[series["status"] != "ok"]
        if len(bad):
            first = bad.iloc[0]
            notes.append(f"{label}: {first['status']}: "
                         f"{first['error'] or first['skipped_reason']}")
        if ok.empty:
            continue
        limit = series["kind"].iloc[0] == "limit"
        # NCCL's three calls share one panel: each limit a colour of its own, drawn thick.
        color = "black" if label in MAIN_LIMITS else (
            "gray" if limit and label not in names.NCCL_ENGINES else COLORS[i % len(COLORS)])
        ax.plot(ok["bytes"], ok["algbw"] / GB, marker="o", markersize=4, color=color,
                linewidth=2.2 if limit else 1.4, label=f"{label} algbw")
        if ok["busbw"].notna().any():
            ax.plot(ok["bytes"], ok["busbw"] / GB, linestyle="--", marker="x", markersize=4,
                    color=color, alpha=0.7, label=f"{label} busbw")
        drawn += 1
    if not drawn:
        _empty(ax, f"{title}: nothing measured" + ("\n" + "\n".join(notes) if notes else ""))
        return
    ax.set_xscale("log", base=2)
    ticks = sorted(rows["bytes"].unique())
    ax.set_xticks(ticks)
    ax.set_xticklabels([names.size_text(int(t)) for t in ticks], fontsize=8)
    if log_y:  # the utilities and their limits differ by orders of magnitude
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
        ax.yaxis.set_minor_formatter(ticker.LogFormatter(labelOnlyBase=False,
                                                         minor_thresholds=(1, 0.4)))
        ax.set_ylabel("GB/s (10^9 bytes/s, log scale)")
    else:
        ax.set_ylim(bottom=0)
        ax.set_ylabel("GB/s (10^9 bytes/s)")
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if notes:
        ax.text(0.0, -0.28, "\n".join(textwrap.shorten(n, 140) for n in notes),
                transform=ax.transAxes, fontsize=7, va="top", color="gray")


def _stacked(panels, height, summary, missing):
    """A figure of `panels` panels one above the other, and its axes; when summary is empty, the
    first panel says `missing`, the others are blank, and the axes are None."""
    fig = Figure(figsize=(10.0, height))
    axes = fig.subplots(panels, 1, squeeze=False)
    if not summary.empty:
        return fig, axes
    _empty(axes[0, 0], missing)
    for ax in axes[1:, 0]:
        ax.set_axis_off()
    return fig, None


def dist_figure(run):
    """Three panels: gathers next to the all-gather limits, broadcasts next to the broadcast
    limits, distribute next to memcpy; a fourth, CUDA memory over NCCL next to NCCL's own calls,
    where the run measured any of it (on a machine without a CUDA device per rank the tables say
    why not)."""
    summary, _ = dist.split(dist.summarize(run.frame))
    nccl_ops = names.NCCL_OPS
    nccl = (not summary.empty and
            (summary["op"].isin(nccl_ops) & (summary["status"] == "ok")).any())
    fig, axes = _stacked(4 if nccl else 3, 16.0 if nccl else 12.0, summary,
                         "no distributed benchmarks in the given file")
    if axes is None:
        return fig
    world = run.world()
    _dist_panel(axes[0, 0], summary, ("gather_state_dict", "all_gather", "all_gather_copying",
                                      "mpi_allgather", "memcpy_gather"),
                f"gather_state_dict and the communicator vs the engine's all-gather ({world})")
    _dist_panel(axes[1, 0], summary, ("broadcast_state_dict", "broadcast", "mpi_bcast",
                                      "memcpy_bcast"),
                f"broadcast_state_dict and the communicator vs the engine's broadcast ({world})",
                xlabel="S = total bytes (broadcast tensors)")
    _dist_panel(axes[2, 0], summary, ("distribute_tensors", "memcpy_local_block"),
                f"distribute_tensors vs memcpy of each rank's block ({world})")
    if nccl:
        _dist_panel(axes[3, 0], summary, nccl_ops,
                    f"CUDA memory over NCCL: stagekit vs NCCL's own calls ({world}, one GPU "
                    f"per rank)",
                    xlabel="S = total bytes (gathered / broadcast / each way)")
    fig.suptitle("Distributed state-dict utilities: algbw (solid) and busbw (dashed), median")
    fig.tight_layout()
    return fig


def _replication_ratio_panel(ax, summary, title):
    """Bars of ratio_to_limit per S, one per replication benchmark, with the 1.0 line."""
    rows = summary[(summary["kind"] == "replicate") & (summary["status"] == "ok")]
    sizes = sorted(summary["bytes"].unique())
    ops = [op for op in REPLICATION_RATIOS if op in set(rows["op"])]
    if rows.empty or not ops:
        _empty(ax, f"{title}: nothing measured")
        return
    width = 0.8 / len(ops)
    for i, op in enumerate(ops):
        series = rows[rows["op"] == op]
        xs = [sizes.index(b) - 0.4 + width * (i + 0.5) for b in series["bytes"]]
        ax.bar(xs, series["ratio_to_limit"], width, color=COLORS[(i + 1) % len(COLORS)],
               label=f"replicate/{op} vs {_limits_text(series)}")
        for x, value in zip(xs, series["ratio_to_limit"]):
            ax.text(x, value, f"{value:.2f}", ha="center", va="bottom", fontsize=7)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(sizes)))
    ax.set_xticklabels([names.size_text(int(b)) for b in sizes], fontsize=8)
    ax.set_xlim(-0.5, len(sizes) - 0.5)
    ax.set_ylim(0, max(1.1, float(rows["ratio_to_limit"].max()) * 1.15))
    ax.set_xlabel("S = bytes of one rank's state dict")
    ax.set_ylabel("ratio_to_limit (algbw / limit algbw)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))


def _limits_text(rows):
    """The limits the rows are divided by, without their size: `limit/mpi_sendrecv then
    limit/seq_write` for a label `limit=limit/mpi_sendrecv/<S>+limit/seq_write/<S>`."""
    limit = next((x for x in rows["limit"] if isinstance(x, str) and x), "")
    return " then ".join(names.family(x) for x in limit.split("+")) if limit else "its limit"


def exchange_limit(summary, backend):
    """The exchange limit of a run: the one it measured (limit/mpi_sendrecv under mpirun,
    limit/memcpy_exchange in a thread world), else its world's, else MPI's."""
    measured = summary[(summary["kind"] == "limit") & (summary["status"] == "ok")]
    families = {names.family(name) for name in measured["benchmark"]}
    for limit in EXCHANGE_ENGINES:
        if limit in families:
            return limit
    return names.WORLD_ENGINES.get(backend, names.WORLD_ENGINES["mpi"])["exchange"]


def replication_figure(run):
    """Three panels: exchange vs the run's exchange limit, persist vs seq_write, and every ratio
    to its limit."""
    _, summary = dist.split(dist.summarize(run.frame))
    fig, axes = _stacked(3, 11.0, summary, "no replication benchmarks in the given file")
    if axes is None:
        return fig
    world = run.world()
    xlabel = "S = bytes of one rank's state dict"
    engine = exchange_limit(summary, run.context.get("world_backend"))
    _dist_panel(axes[0, 0], summary, ("exchange", engine.rpartition("/")[2]),
                f"ReplicationStager exchange (no persistence) vs {engine}, "
                f"{EXCHANGE_ENGINES[engine]} ({world})", xlabel, log_y=False)
    _dist_panel(axes[1, 0], summary, ("persist", "seq_write"),
                f"write_replica (fsync) vs sequential write + fsync, every rank at once ({world})",
                xlabel, log_y=False)
    _replication_ratio_panel(axes[2, 0], summary,
                             "ratio_to_limit (stage: exchange then persist, vs "
                             f"{engine.rpartition('/')[2]} then seq_write)")
    fig.suptitle("Replication: algbw = S / time (slowest rank), median")
    fig.tight_layout()
    return fig


def save(fig, out, name, dpi):
    paths = []
    for ext in ("png", "svg"):
        path = os.path.join(out, f"{name}.{ext}")
        fig.savefig(path, dpi=dpi, bbox_inches="tight",
                    metadata={"Date": None} if ext == "svg" else None)
        paths.append(path)
    return paths


CHARTS = ("throughput", "ratio_to_limit", "history", "dist_bandwidth", "replication_bandwidth")


def main(argv=None):
    parser = argparse.ArgumentParser(prog=cli.prog("plot"), description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="+", metavar="RESULT.json",
                        help="result files (stagekit and peers), drawn side by side")
    parser.add_argument("--out", required=True, metavar="DIR", help="directory for the charts")
    parser.add_argument("--history", metavar="HISTORY_DIR",
                        help="nightly result files for the throughput-over-time chart")
    parser.add_argument("--dist", metavar="DIST.json",
                        help="stagekit-dist-bench results for the dist_bandwidth and "
                             "replication_bandwidth charts")
    parser.add_argument("--dpi", type=int, default=120, help="PNG resolution (default 120)")
    parser.add_argument("--only", action="append", choices=CHARTS, metavar="CHART",
                        help="draw only this chart (repeatable; one of: " + ", ".join(CHARTS) + ")")
    args = parser.parse_args(argv)
    try:
        runs = [load_run(path) for path in args.results]
        dist_run = load_run(args.dist) if args.dist else None
    except PerfFileError as exc:
        print(f"plot: {exc}", file=sys.stderr)
        return 2
    nights = []
    if args.history:
        nights, problems = load_history(args.history)
        for problem in problems:
            print(f"plot: {problem}", file=sys.stderr)
        if problems:
            return 2
    for run in runs + ([dist_run] if dist_run else []):
        for warning in run.warnings:
            print(f"plot: warning: {warning}", file=sys.stderr)
    os.makedirs(args.out, exist_ok=True)
    named = labelled(runs)
    wanted = set(args.only or CHARTS)
    drawn = {"throughput": lambda: throughput_figure(named),
             "ratio_to_limit": lambda: ratio_figure(named)}
    if args.history:
        drawn["history"] = lambda: history_figure(nights)
    if dist_run:
        drawn["dist_bandwidth"] = lambda: dist_figure(dist_run)
        drawn["replication_bandwidth"] = lambda: replication_figure(dist_run)
    written = []
    for name in CHARTS:
        if name in wanted and name in drawn:
            written += save(drawn[name](), args.out, name, args.dpi)
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
