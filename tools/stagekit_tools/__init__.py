"""Shared code of the stagekit perf tools.

Modules (import them directly; this package imports nothing on its own so that
`peer_torch.py` can use the writer without pandas):

- `names`       benchmark-name grammar: identity, kind, src, dst, layout, mode
- `perf_json`   load and validate one result file into a pandas DataFrame
- `stats`       per-benchmark summaries (median, CV, status) and the geometric mean
- `history`     load a directory of nightly result files in night order
- `conformance` load a conformance results.json
- `targets`     the performance targets and their evaluation
- `dist`        summaries of stagekit-dist-bench results (algbw, busbw, ratio to the limit)
- `gbench_json` write Google Benchmark JSON (used by peer_torch.py and the test fixtures)
"""
