"""The machine the numbers come from: the environment table, the one-line summary under the title,
and one line for each way the machine bounds a number (huge pages off, no GPU, few CPUs, an
oversubscribed world, a short run, a non-release build).

Reads the benchmark context keys (reports/SCHEMAS.md) and the conformance `environment`; a key a
harness did not record shows as "unknown" (`stagekit_build_type`, `thp_enabled`,
`thp_shmem_enabled` are recent).  `library_build_type` is Google Benchmark's own library build,
not stagekit's, and is labelled so.  Standard library only.
"""
import json

from stagekit_tools.bench_file import kernel_setting
from stagekit_tools.render import Span

UNKNOWN = "unknown"
RELEASE_BUILDS = ("release", "relwithdebinfo", "minsizerel")
# (label, benchmark context key, conformance document path)
ENVIRONMENT = (("implementation", "implementation", ("implementation", "name")),
               ("version", "implementation_version", ("implementation", "version")),
               ("stagekit build type", "stagekit_build_type", ("environment", "build_type")),
               ("git sha", "git_sha", ("environment", "git", "sha")),
               ("git dirty", "git_dirty", ("environment", "git", "dirty")),
               ("date", "date", ("run", "started")),
               ("mode / profile", "mode", ("run", "profile")),
               ("compiler", "compiler", ("environment", "compiler")),
               ("cpu model", "cpu_model", ("environment", "host", "cpu_model")),
               ("cpu count", "cpu_count", ("environment", "host", "cpu_count")),
               ("memory", "memory_total", ("environment", "host", "memory_total")),
               ("transparent huge pages", "thp_enabled", None),
               ("shmem huge pages", "thp_shmem_enabled", None),
               ("cuda", "cuda", ("environment", "cuda")),
               ("gpu", "gpu", None),
               ("copy threads", "copy_threads", None),
               ("world", "world", None),
               ("host", "host_name", ("environment", "host", "hostname")),
               ("Google Benchmark library build", "library_build_type", None))


def nested(doc, path):
    for key in path or ():
        if not isinstance(doc, dict) or key not in doc:
            return None
        doc = doc[key]
    return doc


def text(value):
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict) and value.get("description"):
        return str(value["description"])
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def memory(value):
    """"24683656 kB" or a byte count as GiB; other text as it is."""
    parts = str(value or "").split()
    if parts and parts[0].isdigit():
        scale = 1024 if len(parts) > 1 and parts[1].lower() == "kb" else 1
        return f"{int(parts[0]) * scale / 2**30:.1f} GiB"
    return str(value) if value else None


def context_value(run, key):
    """The environment value of a benchmark file for an ENVIRONMENT key."""
    context = run.context
    if key == "world":
        return run.world() if context.get("world_backend") else None
    if key == "memory_total":
        return memory(context.get("memory_total_bytes") or context.get("memory_total"))
    if key in ("thp_enabled", "thp_shmem_enabled"):
        return kernel_setting(context.get(key)) or UNKNOWN
    if key == "stagekit_build_type":
        return context.get(key) or f"{UNKNOWN} (not recorded by this harness)"
    return context.get(key)


def environment_table(runs, conformance):
    """("table", headers, rows): a column per benchmark file (role, run) and one for the first
    conformance file (label, doc), a row per ENVIRONMENT entry with a value somewhere."""
    headers = [""] + [f"{role} ({run.path})" for role, run in runs]
    if conformance:
        headers.append(f"conformance: {conformance[0].label}")
    rows = []
    for label, key, path in ENVIRONMENT:
        cells = [text(context_value(run, key)) for _, run in runs]
        if conformance:
            value = nested(conformance[0].doc, path) if path else None
            cells.append(text(memory(value) if key == "memory_total" else value))
        if any(c != "-" for c in cells):
            rows.append([label] + cells)
    return ("table", headers, rows)


def build_type(runs):
    """stagekit's build type from the first benchmark file that records it, else UNKNOWN."""
    for _, run in runs:
        if run.context.get("stagekit_build_type"):
            return str(run.context["stagekit_build_type"])
    return UNKNOWN


def summary_line(runs, conformance):
    """One line under the title: where and when, stagekit's build type, the run mode."""
    context = runs[0][1].context if runs else {}
    env = conformance[0].doc.get("environment", {}) if conformance else {}
    host = context.get("host_name") or nested(env, ("host", "hostname"))
    cpus = context.get("cpu_count") or nested(env, ("host", "cpu_count"))
    sha = str(context.get("git_sha") or nested(env, ("git", "sha")) or "")
    parts = [f"git {sha[:12]}" if sha and sha != UNKNOWN else "",
             str(context.get("date") or nested(conformance[0].doc, ("run", "started")) or "")
             if (context or conformance) else "",
             f"host {host}" if host else "", f"{cpus} CPUs" if cpus else "",
             f"stagekit build type {build_type(runs)}",
             f"perf mode {context['mode']}" if context.get("mode") else ""]
    return " · ".join(p for p in parts if p)


def bound_notes(runs, dist_run, cuda_note=None, dist_also_run=None):
    """One line for each way this machine bounds a number of the report (may be empty).

    runs: [(role, run)] of the stage benchmark files; dist_run: the stagekit-dist-bench file or
    None; cuda_note: the footnote Note of the reason CUDA is unusable, when it is; dist_also_run:
    the second stagekit-dist-bench file (--dist-also) or None."""
    context = runs[0][1].context if runs else {}
    notes = []
    shmem = kernel_setting(context.get("thp_shmem_enabled"))
    if shmem == "never":
        notes.append("Staging into shared memory (to shared, to pinned_shared) is page-fault "
                     "bound here: the kernel's shared-memory huge pages are off "
                     "(thp_shmem_enabled = never), so every 4 KiB page of a new shared buffer "
                     "faults on first touch.")
    thp = kernel_setting(context.get("thp_enabled"))
    if thp == "never":
        notes.append("Cold staging into pageable memory is page-fault bound here: transparent "
                     "huge pages are off (thp_enabled = never), so every 4 KiB page of a new "
                     "buffer faults on first touch.")
    if context.get("cuda") == "none" or (cuda_note is not None and not context):
        notes.append(Span("No usable CUDA device: GPU sources are not measured and the CUDA "
                          "cases do not run.", notes=(cuda_note,) if cuda_note else ()))
    for which, run in (("The distributed benchmarks", dist_run),
                       ("The second run of the distributed benchmarks", dist_also_run)):
        if run is None:
            continue
        size, cpus = _int(run.context.get("world_size")), _int(run.context.get("cpu_count"))
        if size and cpus and size > cpus:
            notes.append(f"{which} ran {size} ranks on {cpus} CPUs ({run.world()}): ranks share "
                         "cores, so their bandwidths are bounded by the CPUs rather than by the "
                         "interconnect.")
    mode = context.get("mode")
    if mode == "smoke":
        notes.append("Smoke mode: tiny sizes and single iterations; the targets are not "
                     "meaningful for this run.")
    elif mode == "quick":
        notes.append("Quick mode: smaller state dicts and fewer repetitions than the nightly full "
                     "run; medians are noisier.")
    kind = build_type(runs)
    if kind != UNKNOWN and kind.lower() not in RELEASE_BUILDS:
        notes.append(f"stagekit was built as {kind}: its numbers are not representative of a "
                     "release build.")
    return notes


def _int(value):
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None
