"""Tests of `python3 -m stagekit_tools.side_by_side`: run it on the fixture results files and check
the HTML (parsed with html.parser) and Markdown it writes, and its exit status on bad input."""
import re
from html.parser import HTMLParser

import pytest

from conftest import conformance_fixture, run_tool

REFERENCE = conformance_fixture("reference", "results.json")
RERUN = conformance_fixture("reference_rerun", "results.json")
VENDOR = conformance_fixture("vendor", "results.json")
SCHEMA_1 = conformance_fixture("schema_v1", "results.json")
# In case_ids order: area (stager, utils, replication), feature, variant, source, config, ranks.
ALL_IDS = ["stager.caching.cpu.pin0_share0", "stager.caching.cuda.pin0_share0",
           "stager.dtensor.cpu.pin0_share0", "stager.dtype.bfloat16.cpu.pin0_share0",
           "stager.dtype.float16.cpu.pin0_share0", "stager.shared.cpu.pin0_share1",
           "stager.views.cpu.pin0_share0", "stager.views.cpu.pin1_share0",
           "utils.create_cpu_state_dict.cpu.pin0_share1.ws2",
           "utils.create_cpu_state_dict.cpu.pin0_share1.ws4",
           "replication.basic.cpu.default.ws2"]
GROUPS = ["stager.caching", "stager.dtensor", "stager.dtype", "stager.shared", "stager.views",
          "utils.create_cpu_state_dict", "replication.basic"]


def run(*args):
    return run_tool("side_by_side", *args)


class Page(HTMLParser):
    """The cases table of a page: column labels, group names and {case id: [cell]}, where a
    cell is {"class", "title", "text"}; plus the summary table's rows as lists of cell texts."""

    def __init__(self, text):
        super().__init__()
        self.labels, self.groups, self.cases, self.summary = [], [], {}, []
        self.table = self.row = self.cell = None
        self.in_group = self.in_head = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.table = attrs.get("class")
        elif tag == "thead":
            self.in_head = True
        elif tag == "tr":
            self.in_group = attrs.get("class") == "group"
            self.row = None
            if self.table == "cases" and attrs.get("class") == "case":
                self.row = self.cases.setdefault(attrs["data-id"], [])
            elif self.table == "summary" and not self.in_head:
                self.row = []
                self.summary.append(self.row)
        elif tag in ("td", "th"):
            self.cell = {"tag": tag, "class": attrs.get("class"), "title": attrs.get("title"),
                         "text": ""}

    def handle_endtag(self, tag):
        if tag == "thead":
            self.in_head = False
        elif tag in ("td", "th") and self.cell is not None:
            text = self.cell["text"].strip()
            if self.table == "cases" and self.in_head and text != "case":
                self.labels.append(text)
            elif self.table == "cases" and self.in_group:
                self.groups.append(text)
            elif self.table == "cases" and self.row is not None and self.cell["tag"] == "td":
                self.row.append(self.cell)
            elif self.table == "summary" and self.row is not None:
                self.row.append(text)
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell["text"] += data


def page_of(tmp_path, *inputs, extra=()):
    out = tmp_path / "page.html"
    proc = run("--out", str(out), *extra, *inputs)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == str(out)
    text = out.read_text(encoding="utf-8")
    return Page(text), text


def test_help():
    proc = run("--help")
    assert proc.returncode == 0 and "usage:" in proc.stdout
    for option in ("--out", "--markdown", "--title", "--only-differences", "LABEL="):
        assert option in proc.stdout


def test_rows_columns_and_groups(tmp_path):
    page, _ = page_of(tmp_path, REFERENCE, VENDOR)
    assert page.labels == ["stagekit-reference", "vendor-stager"]
    assert list(page.cases) == ALL_IDS
    assert page.groups == GROUPS
    assert all(len(cells) == 2 for cells in page.cases.values())


def test_schema_1_ids_still_group_by_their_first_two_segments(tmp_path):
    page, _ = page_of(tmp_path, SCHEMA_1, REFERENCE)
    assert page.labels == ["stagekit-reference (schema_v1)", "stagekit-reference (reference)"]
    # the old glued ID is a group of its own, next to the new one
    assert page.groups[:3] == ["stager.caching", "stager.dtype", "stager.dtype_bfloat16"]
    assert page.groups[-3:] == ["utils.create_cpu_state_dict_pin0_share1",
                                "utils.gather_state_dict", "replication.basic"]
    old = page.cases["utils.gather_state_dict.cpu.ws2"]
    assert [c["class"] for c in old] == ["o-fail", "o-missing"]


def test_outcome_classes(tmp_path):
    page, _ = page_of(tmp_path, REFERENCE, VENDOR)
    vendor = {ident: cells[1] for ident, cells in page.cases.items()}
    assert vendor["stager.caching.cpu.pin0_share0"]["class"] == "o-crash"
    assert vendor["stager.caching.cuda.pin0_share0"]["class"] == "o-pass"
    assert vendor["stager.dtensor.cpu.pin0_share0"]["class"] == "o-fail"
    assert vendor["stager.views.cpu.pin0_share0"]["class"] == "o-waived"
    assert vendor["stager.views.cpu.pin1_share0"]["class"] == "o-timeout"
    reference = page.cases["stager.caching.cuda.pin0_share0"][0]
    assert reference["class"] == "o-not_supported" and reference["text"] == "not_supported"
    assert reference["title"] == "not_supported: no usable CUDA device"


def test_css_colours(tmp_path):
    _, text = page_of(tmp_path, REFERENCE)
    colours = dict(re.findall(r"\.o-(\w+) \{ background: (#[0-9a-f]{6})", text))
    assert set(colours) >= {"pass", "fail", "crash", "timeout", "not_supported", "waived",
                            "missing"}
    assert len({colours[o] for o in ("pass", "fail", "crash", "timeout", "waived")}) == 5


def test_missing_case_cell(tmp_path):
    page, _ = page_of(tmp_path, REFERENCE, VENDOR)
    missing = page.cases["stager.dtensor.cpu.pin0_share0"][0]
    assert missing == {"tag": "td", "class": "o-missing", "title": "not run", "text": "—"}
    assert page.cases["stager.shared.cpu.pin0_share1"][1]["class"] == "o-missing"


def test_title_is_escaped(tmp_path):
    page, text = page_of(tmp_path, VENDOR)
    reason = "fail: a < b && \"quoted\" 'single' <script>alert(1)</script>"
    assert page.cases["stager.dtensor.cpu.pin0_share0"][0]["title"] == reason
    assert "<script>alert" not in text
    assert 'title="fail: a &lt; b &amp;&amp; &quot;quoted&quot; &#x27;single&#x27;' in text


def test_verdict_badge_expected_and_output_tail(tmp_path):
    page, _ = page_of(tmp_path, REFERENCE, VENDOR)
    crash = page.cases["stager.caching.cpu.pin0_share0"][1]
    assert crash["text"] == "crash REGRESSION"
    lines = crash["title"].splitlines()
    assert lines[:3] == ["crash: killed by signal 11 (SIGSEGV)", "verdict: REGRESSION",
                         "expected: pass"]
    assert lines[-1] == "Segmentation fault <in vendor::stage>"
    assert "line 6" not in lines and "line 7" in lines  # the last 20 lines only
    fix = page.cases["stager.caching.cuda.pin0_share0"][1]
    assert fix["text"] == "pass FIX" and "expected: not_supported" in fix["title"]


def test_ok_verdict_waiver_and_attempts(tmp_path):
    page, _ = page_of(tmp_path, VENDOR)
    waived = page.cases["stager.views.cpu.pin0_share0"][0]
    assert waived["text"] == "waived"  # verdict ok: no badge
    assert "waiver: views are copied by design — https://example.com/issues/7?a=1&b=2" \
        in waived["title"]
    timeout = page.cases["stager.views.cpu.pin1_share0"][0]
    assert timeout["text"] == "timeout DIFFERENCE"
    assert "attempts: pass, timeout, timeout" in timeout["title"]
    assert "expected: pass or not_supported" in timeout["title"]
    assert timeout["title"].endswith('waiting for "stream" & <event>')


def test_summary_counts_plugin_and_verdicts(tmp_path):
    page, _ = page_of(tmp_path, REFERENCE, VENDOR)
    reference, vendor = page.summary
    # column, name, version, plugin, run, file, pass, fail, not_supported, waived, crash,
    # timeout, verdicts
    assert reference[:3] == ["stagekit-reference", "stagekit-reference", "0.1.0"]
    assert reference[6:12] == ["9", "0", "1", "0", "0", "0"] and reference[12] == ""
    assert vendor[:4] == ["vendor-stager", "vendor-stager", "2.3",
                          "/opt/vendor/lib/libvendor_stager.so"]
    assert vendor[6:12] == ["1", "1", "0", "1", "1", "1"]
    assert vendor[12] == "1 ok, 1 FIX, 1 REGRESSION, 1 DIFFERENCE"


def test_only_differences(tmp_path):
    page, _ = page_of(tmp_path, REFERENCE, RERUN, extra=["--only-differences"])
    assert list(page.cases) == ["stager.views.cpu.pin0_share0"]
    assert page.groups == ["stager.views"]
    assert [c["class"] for c in page.cases["stager.views.cpu.pin0_share0"]] == ["o-pass", "o-fail"]
    page, _ = page_of(tmp_path, REFERENCE, VENDOR, extra=["--only-differences"])
    assert "stager.shared.cpu.pin0_share1" in page.cases  # run vs not run differs
    assert len(page.cases) == len(ALL_IDS)


def test_label_disambiguation_and_override(tmp_path):
    page, _ = page_of(tmp_path, REFERENCE, RERUN)
    assert page.labels == ["stagekit-reference (reference)", "stagekit-reference (reference_rerun)"]
    page, _ = page_of(tmp_path, f"base={REFERENCE}", f"cand <1>={RERUN}")
    assert page.labels == ["base", "cand <1>"]
    page, _ = page_of(tmp_path, REFERENCE, REFERENCE)
    assert page.labels == ["stagekit-reference (reference) #1", "stagekit-reference (reference) #2"]


def test_markdown_and_title(tmp_path):
    md = tmp_path / "table.md"
    page, text = page_of(tmp_path, REFERENCE, VENDOR,
                         extra=["--markdown", str(md), "--title", "A & B <x>"])
    assert "<title>A &amp; B &lt;x&gt;</title>" in text
    lines = md.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "# A & B <x>"
    assert "| case | stagekit-reference | vendor-stager |" in lines
    assert "| **stager.views** | | |" in lines
    assert "| **utils.create_cpu_state_dict** | | |" in lines
    assert "| `stager.caching.cpu.pin0_share0` | pass | crash **REGRESSION** |" in lines
    assert "| `stager.dtensor.cpu.pin0_share0` | — | fail |" in lines
    assert sum(1 for line in lines if line.startswith("| `")) == len(ALL_IDS)


@pytest.mark.parametrize("name, message", [
    ("missing.json", "no such file"),
    ("malformed.json", "not valid JSON"),
    ("schema_v3.json", "unsupported schema_version 3; these tools read 1 and 2"),
    ("no_results.json", "no 'results' list"),
])
def test_bad_input(tmp_path, name, message):
    path = conformance_fixture(name)
    out = tmp_path / "page.html"
    proc = run("--out", str(out), REFERENCE, path)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert path in proc.stderr and message in proc.stderr
    assert not out.exists()


def test_bad_result_entries(tmp_path):
    (tmp_path / "dup.json").write_text(
        '{"schema_version": 2, "results": [{"id": "a", "outcome": "pass"},'
        ' {"id": "a", "outcome": "fail"}]}', encoding="utf-8")
    (tmp_path / "noid.json").write_text(
        '{"schema_version": 2, "results": [{"outcome": "pass"}]}', encoding="utf-8")
    (tmp_path / "notobj.json").write_text('{"schema_version": 2, "results": [3]}',
                                          encoding="utf-8")
    for name, message in (("dup.json", "'a' appears more than once"),
                          ("noid.json", "results[0] has no 'id'"),
                          ("notobj.json", "results[0] is not a JSON object")):
        proc = run("--out", str(tmp_path / "page.html"), str(tmp_path / name))
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr


def test_usage_errors():
    assert run(REFERENCE).returncode == 2  # --out is required
    assert run("--out", "x.html").returncode == 2  # no input
