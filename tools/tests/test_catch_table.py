"""The catch table: which broken variants each case family catches, resolved exactly as the
runner resolves expectations, and a family caught by nothing only with a written reason."""
import json

import pytest

from stagekit_tools import catch_table

IDS = ["stager.views.cpu.pin0_share0", "stager.views.cpu.pin1_share1",
       "stager.dtype.float32.cpu.pin0_share0", "stager.dtype.int32.cpu.pin0_share0",
       "utils.gather.cpu.default.ws2"]


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


def expectations(keys):
    return {"schema_version": 2, "implementation": "x", "expectations": keys}


def test_the_most_specific_key_decides_as_in_the_runner(tmp_path):
    path = write(tmp_path, "v.expect.json", expectations({
        "*": "pass",
        "stager.views.cpu.*": {"outcome": "fail", "reason": "sharing"},
        "stager.views.cpu.pin1_share1": "pass",
        "stager.dtype.float*.cpu.*": ["fail", "not_supported"]}))
    assert catch_table.caught_cases(path, IDS) == {
        "stager.views.cpu.pin0_share0", "stager.dtype.float32.cpu.pin0_share0"}


def test_an_expectation_that_also_accepts_a_pass_catches_nothing(tmp_path):
    # One torch version's limit (fail there, pass elsewhere) proves nothing about the variant.
    path = write(tmp_path, "v.expect.json", expectations({
        "*": "pass",
        "stager.views.cpu.*": {"outcome": ["pass", "fail"], "reason": "source lifetime"},
        "stager.dtype.float32.cpu.*": {"outcome": "fail", "reason": "differ"}}))
    assert catch_table.caught_cases(path, IDS) == {"stager.dtype.float32.cpu.pin0_share0"}


def test_a_broad_failing_key_is_refused(tmp_path):
    path = write(tmp_path, "v.expect.json", expectations({"*": "pass", "*.cpu.*": "fail"}))
    with pytest.raises(catch_table.InputError, match="does not name a case family"):
        catch_table.caught_cases(path, IDS)


def test_rows_name_the_variants_and_demand_a_reason_for_the_rest(tmp_path):
    cpp = {"drops": write(tmp_path, "drops.expect.json",
                          expectations({"*": "pass", "stager.views.cpu.*": "fail"}))}
    python = {"floats": write(tmp_path, "floats.expect.json",
                              expectations({"*": "pass", "stager.dtype.float32.cpu.*": "crash"}))}
    with pytest.raises(catch_table.InputError, match="'utils.gather': no broken variant"):
        catch_table.build_rows(IDS, cpp, python, {})
    rows = catch_table.build_rows(IDS, cpp, python, {"utils.gather": "caught by an in-tree mutant"})
    assert rows == [("stager.dtype", 2, [], ["floats"], ""),
                    ("stager.views", 2, ["drops"], [], ""),
                    ("utils.gather", 1, [], [], "caught by an in-tree mutant")]
    with pytest.raises(catch_table.InputError, match="'stager.views' is caught by a variant"):
        catch_table.build_rows(IDS, cpp, python, {"utils.gather": "r", "stager.views": "stale"})
    with pytest.raises(catch_table.InputError, match="'stager.gone', which is not a case family"):
        catch_table.build_rows(IDS, cpp, python, {"utils.gather": "r", "stager.gone": "r"})
    table = catch_table.render(rows)
    assert "2 of 3 case families catch at least one broken variant" in table
    assert "| `stager.views` | 2 | `drops` | — |  |" in table


def test_the_readme_check_fails_until_regenerated(tmp_path, monkeypatch):
    cpp_dir, py_dir = tmp_path / "cpp", tmp_path / "py"
    cpp_dir.mkdir()
    py_dir.mkdir()
    write(cpp_dir, "drops.expect.json", expectations({"*": "pass", "stager.views.cpu.*": "fail"}))
    write(py_dir, "correct.expect.json", expectations({"*": "pass"}))
    write(py_dir, "floats.expect.json",
          expectations({"*": "pass", "stager.dtype.float32.cpu.*": "fail"}))
    reasons = write(tmp_path, "reasons.json", {"schema_version": 1,
                                               "families": {"utils.gather": "mutant"}})
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{catch_table.BEGIN}\nold\n{catch_table.END}\ntail\n")
    monkeypatch.setattr(catch_table, "list_ids", lambda conform: IDS)
    args = ["--conform", "x", "--cpp", str(cpp_dir), "--python", str(py_dir), "--reasons", reasons,
            "--readme", str(readme)]
    assert catch_table.main(args + ["--check"]) == 1
    assert catch_table.main(args) == 0
    assert catch_table.main(args + ["--check"]) == 0
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("tail\n") and "`floats`" in text
    assert "`correct`" not in text
    write(tmp_path, "reasons.json", {"schema_version": 1, "families": {}})
    assert catch_table.main(args + ["--check"]) == 2
