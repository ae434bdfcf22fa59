"""Load a conformance results.json and count what it holds (reports/SCHEMAS.md).

schema_version 2 has the hierarchical case IDs (`case_ids`); schema_version 1 files, with the
older IDs, are read as well.  Optional per-result fields (expected, verdict, waiver, output,
attempts, runs) and implementation.plugin are additive; readers ignore what they do not use.
Standard library only.
"""
import os

from stagekit_tools import case_ids
from stagekit_tools.jsonfile import read_json

SCHEMA_VERSIONS = ("1", "2")
OUTCOMES = ("pass", "fail", "not_supported", "waived", "crash", "timeout")
FAILING = ("fail", "crash", "timeout")
VERDICTS = ("ok", "FIX", "REGRESSION", "DIFFERENCE", "MISSING")
NO_REASON = "(no reason given)"


class ConformanceFileError(Exception):
    """A conformance file that cannot be used; the message names the file and the problem."""


def load_conformance(path):
    """The results document with `counts` filled in from `results` when absent."""
    doc = read_json(path, ConformanceFileError)
    if not isinstance(doc, dict):
        raise ConformanceFileError(f"{path}: top level is not a JSON object")
    if str(doc.get("schema_version")) not in SCHEMA_VERSIONS:
        raise ConformanceFileError(f"{path}: unsupported schema_version "
                                   f"{doc.get('schema_version')!r}; these tools read "
                                   + " and ".join(SCHEMA_VERSIONS))
    results = doc.get("results")
    if not isinstance(results, list):
        raise ConformanceFileError(f"{path}: no 'results' list")
    for index, result in enumerate(results):
        if not isinstance(result, dict):
            raise ConformanceFileError(f"{path}: results[{index}] is not a JSON object")
    if not isinstance(doc.get("counts"), dict):
        doc["counts"] = count_outcomes(results)
    return doc


def results_by_id(doc, path):
    """{id: result} of a loaded document; ConformanceFileError for a missing or repeated id."""
    by_id = {}
    for index, result in enumerate(doc["results"]):
        ident = result.get("id")
        if not isinstance(ident, str) or not ident:
            raise ConformanceFileError(f"{path}: results[{index}] has no 'id' string")
        if ident in by_id:
            raise ConformanceFileError(f"{path}: case {ident!r} appears more than once")
        by_id[ident] = result
    return by_id


def implementation_name(doc):
    """implementation.name of a document, or "unknown"."""
    impl = doc.get("implementation")
    return str(impl.get("name") or "unknown") if isinstance(impl, dict) else "unknown"


def outcome(result):
    return str(result.get("outcome", "?"))


def count_outcomes(results):
    """{outcome: n} over results, every known outcome present (zero when absent)."""
    counts = dict.fromkeys(OUTCOMES, 0)
    for result in results:
        counts[outcome(result)] = counts.get(outcome(result), 0) + 1
    return counts


def counts_by_area(doc):
    """[(area, {outcome: n})] in the order of case_ids.AREAS, then other areas by name; only the
    areas with at least one case."""
    grouped = {}
    for result in doc["results"]:
        grouped.setdefault(case_ids.area_of(str(result.get("id", ""))), []).append(result)
    order = [a for a in case_ids.AREAS if a in grouped]
    order += sorted(set(grouped) - set(order))
    return [(area, count_outcomes(grouped[area])) for area in order]


def count_verdicts(results):
    """{verdict: n} over the results that carry one, in VERDICTS order, then others by name."""
    counts = {}
    for result in results:
        if "verdict" in result:
            verdict = str(result["verdict"])
            counts[verdict] = counts.get(verdict, 0) + 1
    order = [v for v in VERDICTS if v in counts] + sorted(set(counts) - set(VERDICTS))
    return {v: counts[v] for v in order}


def failures(doc):
    """Results whose outcome is fail, crash or timeout."""
    return [r for r in doc["results"] if r.get("outcome") in FAILING]


def reason(result):
    """A result's reason, or NO_REASON."""
    return str(result.get("reason", "")) or NO_REASON


def not_supported_reasons(doc):
    """[(count, reason)] of the not_supported results, most frequent first."""
    grouped = {}
    for result in doc["results"]:
        if result.get("outcome") == "not_supported":
            grouped[reason(result)] = grouped.get(reason(result), 0) + 1
    return sorted(((n, why) for why, n in grouped.items()), key=lambda x: (-x[0], x[1]))


def split_labelled(arg):
    """(label or None, path) of an input given as PATH or LABEL=PATH (a path that exists wins)."""
    if "=" in arg and not os.path.exists(arg):
        label, path = arg.split("=", 1)
        if label and path:
            return label, path
    return None, arg


def disambiguate(items):
    """Make the `label`s of items (objects with label and path) unique: append the parent
    directory's name to repeated labels, then a number if still repeated."""
    for suffix in ("parent", "number"):
        by_label = {}
        for item in items:
            by_label.setdefault(item.label, []).append(item)
        for label, same in by_label.items():
            for number, item in enumerate(same if len(same) > 1 else [], 1):
                parent = os.path.basename(os.path.dirname(os.path.abspath(item.path)))
                item.label = f"{label} ({parent})" if suffix == "parent" else f"{label} #{number}"
