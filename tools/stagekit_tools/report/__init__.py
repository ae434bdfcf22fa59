"""The stagekit report: index.html and README.md from benchmark and conformance results.

    python3 -m stagekit_tools.report --out DIR [--perf RESULT.json] [--peer PEER.json]
        [--dist DIST.json] [--dist-also DIST.json] [--conformance [LABEL=]RESULTS.json ...]
        [--charts DIR] [--link ...]

Modules: `inputs` (load and label every input, keep what is unusable as a stated problem),
`headline` (one row per implementation: conformance pass rate per area, expectations, target
verdicts, key ratios), `machine` (the environment, and where the machine bounds a number),
`details` (the tables after the charts), `build` (the blocks in reading order: headline, notes,
charts, tables), `__main__` (the command).
"""
