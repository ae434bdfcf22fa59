"""Load a conformance results.json (schema_version 1, see reports/SCHEMAS.md).

Optional per-result fields (expected, verdict, waiver, output, attempts, runs) and
implementation.plugin are additive to schema_version 1; readers ignore what they do not use.
"""
from stagekit_perf.perf_json import read_document

OUTCOMES = ("pass", "fail", "not_supported", "waived", "crash", "timeout")
FAILING = ("fail", "crash", "timeout")
VERDICTS = ("ok", "FIX", "REGRESSION", "DIFFERENCE", "MISSING")


class ConformanceFileError(Exception):
    """A conformance file that cannot be used; the message names the file and the problem."""


def load_conformance(path):
    """The results document with `counts` filled in from `results` when absent."""
    doc = read_document(path, ConformanceFileError)
    if not isinstance(doc, dict):
        raise ConformanceFileError(f"{path}: top level is not a JSON object")
    if str(doc.get("schema_version")) != "1":
        raise ConformanceFileError(f"{path}: unsupported schema_version "
                                   f"{doc.get('schema_version')!r}; these tools read 1")
    results = doc.get("results")
    if not isinstance(results, list):
        raise ConformanceFileError(f"{path}: no 'results' list")
    for index, result in enumerate(results):
        if not isinstance(result, dict):
            raise ConformanceFileError(f"{path}: results[{index}] is not a JSON object")
    if not isinstance(doc.get("counts"), dict):
        counts = dict.fromkeys(OUTCOMES, 0)
        for result in results:
            outcome = str(result.get("outcome", "?"))
            counts[outcome] = counts.get(outcome, 0) + 1
        doc["counts"] = counts
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


def failures(doc):
    """Results whose outcome is fail, crash or timeout."""
    return [r for r in doc["results"] if r.get("outcome") in FAILING]


def not_supported_reasons(doc):
    """[(count, reason)] of the not_supported results, most frequent first."""
    grouped = {}
    for result in doc["results"]:
        if result.get("outcome") == "not_supported":
            reason = str(result.get("reason", "")) or "(no reason given)"
            grouped[reason] = grouped.get(reason, 0) + 1
    return sorted(((n, reason) for reason, n in grouped.items()), key=lambda x: (-x[0], x[1]))
