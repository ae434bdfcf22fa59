"""Load every input of the report, each once, with its summaries computed once.

An input that is absent or unusable becomes a one-line problem the report states; it is never
fatal.  Conformance inputs are `[LABEL=]RESULTS.json` like side_by_side's; labels are made unique
the same way.  Needs pandas (perf_frame, stats, dist).
"""
from dataclasses import dataclass, field

from stagekit_tools import conformance as conf
from stagekit_tools import dist, stats
from stagekit_tools.bench_file import PerfFileError
from stagekit_tools.perf_frame import load_run


@dataclass
class Conformance:
    """One conformance results file: its label, path and document."""
    label: str
    path: str
    doc: dict

    @property
    def name(self):
        return conf.implementation_name(self.doc)


@dataclass
class Perf:
    """One benchmark result file with its summary (stats.summarize), computed once."""
    role: str           # "stagekit", "peer", "dist" or "dist-also"
    run: object         # perf_frame.PerfRun
    summary: object     # stats.summarize(run.frame) (stage files) or dist.summarize (dist files)

    @property
    def name(self):
        return self.run.implementation


@dataclass
class Inputs:
    perf: Perf = None
    peers: list = field(default_factory=list)  # of Perf: the other implementations' benchmarks
    dist: Perf = None
    # a second stagekit-dist-bench run at another world size (--dist-also): its values of the
    # distributed targets are shown next to the verdicts of `dist`, never judged
    dist_also: Perf = None
    conformance: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    dist_path: str = ""
    dist_also_path: str = ""


def _load_perf(role, path, problems):
    if not path:
        return None
    try:
        run = load_run(path)
    except PerfFileError as exc:
        problems.append(f"The {role} result file is unusable: {exc}")
        return None
    problems += [f"{role}: {w}" for w in run.warnings]
    summary = dist.summarize(run.frame) if role.startswith("dist") else \
        stats.summarize(run.frame)
    return Perf(role, run, summary)


def load(args):
    """The Inputs of parsed command-line arguments (perf, peer, dist, dist_also, conformance)."""
    inputs = Inputs(dist_path=args.dist or "", dist_also_path=args.dist_also or "")
    problems = inputs.problems
    if not args.perf:
        problems.append("No perf result file was given.")
    inputs.perf = _load_perf("perf", args.perf, problems)
    inputs.peers = [p for p in (_load_perf("peer", path, problems) for path in args.peer or [])
                    if p is not None]
    inputs.dist = _load_perf("dist", args.dist, problems)
    inputs.dist_also = _load_perf("dist-also", args.dist_also, problems)
    if not args.conformance:
        problems.append("No conformance results were given.")
    for arg in args.conformance or []:
        label, path = conf.split_labelled(arg)
        try:
            doc = conf.load_conformance(path)
        except conf.ConformanceFileError as exc:
            problems.append(f"The conformance results are unusable: {exc}")
            continue
        inputs.conformance.append(Conformance(label or conf.implementation_name(doc), path, doc))
    conf.disambiguate(inputs.conformance)
    return inputs
