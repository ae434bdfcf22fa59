"""The case-ID grammar: schema-2 IDs parse into area, feature, variant, source, config and ranks;
schema-1 IDs parse without failing; the order is area, feature, variant, source, config, ranks."""
import pytest

from stagekit_tools import case_ids


@pytest.mark.parametrize("text, parts", [
    ("stager.views.cpu.pin1_share0", ("stager", "views", (), "cpu", "pin1_share0", 0)),
    ("stager.dtype.bfloat16.cpu.pin0_share0",
     ("stager", "dtype", ("bfloat16",), "cpu", "pin0_share0", 0)),
    ("stager.cycle_rejected.dict_self.cuda.pin0_share0",
     ("stager", "cycle_rejected", ("dict_self",), "cuda", "pin0_share0", 0)),
    ("utils.create_cpu_state_dict.cpu.pin0_share1.ws4",
     ("utils", "create_cpu_state_dict", (), "cpu", "pin0_share1", 4)),
    ("replication.basic.cpu.default.ws2", ("replication", "basic", (), "cpu", "default", 2)),
    ("stager.a.b.c.cpu.default", ("stager", "a", ("b", "c"), "cpu", "default", 0)),
    # schema 1: glued parameters, no config on multi-rank cases
    ("stager.dtype_bfloat16.cpu.pin0_share0",
     ("stager", "dtype_bfloat16", (), "cpu", "pin0_share0", 0)),
    ("utils.gather_state_dict.cpu.ws2", ("utils", "gather_state_dict", (), "cpu", "", 2)),
    ("odd", ("odd", "", (), "", "", 0)),
    ("a.ws2", ("a", "ws2", (), "", "", 0)),
])
def test_parse(text, parts):
    case = case_ids.parse(text)
    assert (case.area, case.feature, case.variant, case.source, case.config, case.ranks) == parts
    assert case.text == text


def test_group_is_area_and_feature():
    assert case_ids.parse("stager.dtype.bfloat16.cpu.pin0_share0").group == "stager.dtype"
    assert case_ids.parse("odd").group == "odd"


def test_order():
    ids = ["replication.basic.cpu.default.ws2", "utils.x.cpu.pin0_share0.ws4",
           "utils.x.cpu.pin0_share0.ws2", "stager.views.cuda.pin0_share0",
           "stager.views.cpu.pin1_share0", "stager.views.cpu.pin0_share0",
           "stager.dtype.float16.cpu.pin0_share0", "stager.dtype.bfloat16.cuda.pin0_share0",
           "stager.dtype.bfloat16.cpu.pin0_share0", "other.thing.cpu.default"]
    assert sorted(ids, key=case_ids.sort_key) == [
        "stager.dtype.bfloat16.cpu.pin0_share0", "stager.dtype.bfloat16.cuda.pin0_share0",
        "stager.dtype.float16.cpu.pin0_share0", "stager.views.cpu.pin0_share0",
        "stager.views.cpu.pin1_share0", "stager.views.cuda.pin0_share0",
        "utils.x.cpu.pin0_share0.ws2", "utils.x.cpu.pin0_share0.ws4",
        "replication.basic.cpu.default.ws2", "other.thing.cpu.default"]
