"""stagekit_tools: the readers, statistics, charts and reports of stagekit's result files.

Nothing is imported here, so each module brings only what it needs: the readers and the renderer
(`jsonfile`, `names`, `bench_file`, `case_ids`, `conformance`, `targets`, `render`,
`gbench_json`) use the standard library alone; `perf_frame`, `stats`, `dist`, `history`, `plot`,
`compare`, `detect` and `report` need pandas (and matplotlib or scipy).  The commands run as
`python3 -m stagekit_tools.<tool>`; tools/README.md lists them and every module.
"""
