"""Read and validate one stagekit benchmark result file, and the rule that classifies an entry.

A result file is Google Benchmark's JSON (`--benchmark_out_format=json`) whose context carries the
stagekit keys (`stagekit_schema_version`, `implementation`, ...; reports/SCHEMAS.md).  `load`
returns a `BenchFile` with the context and the raw entries; `perf_frame.load_run` builds a pandas
table on top of it.  Every problem that makes a file unusable raises `PerfFileError` with a message
naming the file and the problem; smaller problems become `BenchFile.warnings`.

`entry_outcome` is the one rule for an entry: "skipped" (an error message starting with
`not_supported:`), "error" (any other error, or a `wrong` counter above zero) or "ok".
Standard library only.
"""
import re
from dataclasses import dataclass, field

from stagekit_tools import names
from stagekit_tools.jsonfile import read_json

SCHEMA_VERSION = "1"
NOT_SUPPORTED_PREFIX = "not_supported:"
OK, SKIPPED, ERROR = "ok", "skipped", "error"
UNKNOWN = "unknown"


class PerfFileError(Exception):
    """A result file that cannot be used; the message names the file and the problem."""


@dataclass
class BenchFile:
    """One loaded result file: its path, context and Google Benchmark entries."""
    path: str
    context: dict
    benchmarks: list
    warnings: list = field(default_factory=list)

    @property
    def implementation(self):
        return str(self.context.get("implementation", UNKNOWN))

    @property
    def git_sha(self):
        return str(self.context.get("git_sha", UNKNOWN))

    @property
    def date(self):
        return str(self.context.get("date", ""))

    def describe(self):
        """One line: implementation, its version, short sha (when known) and date."""
        parts = [self.implementation, str(self.context.get("implementation_version", "")),
                 self.git_sha[:12] if self.git_sha != UNKNOWN else "", self.date]
        return " ".join(p for p in parts if p)

    def world(self):
        """"mpi, 4 ranks" from a stagekit-dist-bench context (or "unknown world")."""
        backend = self.context.get("world_backend")
        size = self.context.get("world_size")
        if not backend:
            return "unknown world"
        return f"{backend}, {size} rank{'' if str(size) == '1' else 's'}"


def check_document(doc, path):
    """Validate the top level and the context; return warnings, raise PerfFileError."""
    if not isinstance(doc, dict):
        raise PerfFileError(f"{path}: top level is a JSON {type(doc).__name__}, expected an object "
                            "with 'context' and 'benchmarks' (Google Benchmark JSON)")
    context = doc.get("context")
    if not isinstance(context, dict):
        raise PerfFileError(f"{path}: no 'context' object: not Google Benchmark JSON "
                            "(run the harness with --benchmark_out_format=json)")
    if "stagekit_schema_version" not in context:
        raise PerfFileError(f"{path}: context has no 'stagekit_schema_version' (expected "
                            f"\"{SCHEMA_VERSION}\"): not a stagekit result file")
    version = str(context["stagekit_schema_version"])
    if version != SCHEMA_VERSION:
        raise PerfFileError(f"{path}: unsupported stagekit_schema_version \"{version}\"; "
                            f"these tools read version \"{SCHEMA_VERSION}\" (update the tools "
                            "or rerun the matching harness)")
    benchmarks = doc.get("benchmarks")
    if not isinstance(benchmarks, list):
        what = "missing" if benchmarks is None else f"a {type(benchmarks).__name__}, not a list"
        raise PerfFileError(f"{path}: 'benchmarks' is {what}: the benchmark run wrote no results "
                            "(did it crash before finishing?)")
    warnings = []
    if "implementation" not in context:
        warnings.append(f"{path}: context has no 'implementation'; using \"{UNKNOWN}\"")
    if not benchmarks:
        warnings.append(f"{path}: 'benchmarks' is empty")
    return warnings


def load(path):
    """Load and validate one result file; PerfFileError when unusable."""
    doc = read_json(path, PerfFileError)
    warnings = check_document(doc, path)
    return BenchFile(path=str(path), context=dict(doc["context"]),
                     benchmarks=list(doc["benchmarks"]), warnings=warnings)


def entry_identity(entry):
    """The benchmark identity of an entry (names.identity of its run_name, else its name)."""
    return names.identity(str(entry.get("run_name") or entry.get("name")))


def _wrong(entry):
    value = entry.get("wrong")
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def entry_outcome(entry):
    """(OK, None), (SKIPPED, reason) or (ERROR, message) of one benchmark entry."""
    if entry.get("error_occurred"):
        message = str(entry.get("error_message", "")).strip() or "error without a message"
        if message.startswith(NOT_SUPPORTED_PREFIX):
            return SKIPPED, message[len(NOT_SUPPORTED_PREFIX):].strip()
        return ERROR, message
    if _wrong(entry) > 0:
        return ERROR, f"wrong result: the verification counted wrong={_wrong(entry):g}"
    return OK, None


def errors(bench):
    """[(identity, message)] of the entries of a BenchFile that failed (skipped ones are not
    failures), each distinct pair once, in file order."""
    found = {}
    for entry in bench.benchmarks:
        if not isinstance(entry, dict):
            continue
        status, message = entry_outcome(entry)
        if status == ERROR:
            found.setdefault((entry_identity(entry), message), None)
    return list(found)


_SELECTED = re.compile(r"\[([^\]]+)\]")


def kernel_setting(value):
    """The selected word of a kernel setting as /sys shows it ("always [madvise] never" ->
    "madvise"); a plain value as it is; None when absent or empty."""
    if value is None or str(value).strip() == "":
        return None
    match = _SELECTED.search(str(value))
    return match.group(1) if match else str(value).strip()
