"""stagekit_torch.snapshot: the bridge's view of the caller's Python tree sees every way a stager
could rewire it, names where, and sees nothing in a tree that was left alone (writing tensor bytes
is not a change of the tree)."""

import collections
import dataclasses

import torch

from stagekit_torch import snapshot


@dataclasses.dataclass
class Hyper:
    lr: float
    betas: tuple


def sample():
    w = torch.arange(6.0).view(2, 3)
    b = torch.zeros(2)
    b.scale = 0.5
    return {"w": w, "w_t": w.t(), "b": b, "again": w,
            "opt": collections.OrderedDict(step=3, lrs=[0.1, 0.2], hyper=Hyper(1e-3, (0.9, 0.99)))}


def test_an_untouched_tree_has_no_change():
    sd = sample()
    before = snapshot.snapshot(sd)
    assert len(before) > 10
    assert snapshot.first_change(sd, before) is None
    sd["w"].fill_(7.0)
    assert snapshot.first_change(sd, before) is None


def change(mutate):
    sd = sample()
    before = snapshot.snapshot(sd)
    mutate(sd)
    return snapshot.first_change(sd, before)


def test_every_kind_of_rewiring_is_named():
    path, what = change(lambda sd: sd.__setitem__("w", sd["w"].clone()))
    assert path == "w" and "before the stage" in what
    path, what = change(lambda sd: sd["opt"].__setitem__("step", 4))
    assert path == "opt.step" and "3" in what
    path, what = change(lambda sd: sd["opt"]["lrs"].pop())
    assert path == "opt.lrs"
    path, what = change(lambda sd: sd.__setitem__("extra", 1))
    assert path == "<root>" and "'extra'" in what
    path, what = change(lambda sd: setattr(sd["b"], "scale", 2.0))
    assert path == "b.scale"
    path, what = change(lambda sd: setattr(sd["opt"]["hyper"], "lr", 1.0))
    assert path == "opt.hyper.lr"
    path, what = change(lambda sd: sd["w"].resize_(3, 2))
    assert path == "w"
    path, what = change(lambda sd: sd.clear())
    assert path == "<root>"


class Slotted:
    __slots__ = ("tensor", "count")

    def __init__(self, tensor, count):
        self.tensor = tensor
        self.count = count


def test_slots_objects_and_sets_are_walked():
    sd = {"slotted": Slotted(torch.zeros(2), 1), "tags": {"warmup", 3}}
    before = snapshot.snapshot(sd)
    sd["slotted"].tensor = torch.ones(2)
    assert snapshot.first_change(sd, before)[0] == "slotted.tensor"
    sd = {"slotted": Slotted(torch.zeros(2), 1), "tags": {"warmup", 3}}
    before = snapshot.snapshot(sd)
    sd["tags"].add("cooldown")
    assert snapshot.first_change(sd, before)[0].startswith("tags")


def test_a_staged_tree_sharing_a_container_with_the_source_is_named():
    sd = sample()
    copied = {"w": sd["w"].clone(), "opt": {"lrs": list(sd["opt"]["lrs"]), "betas": (0.9, 0.99)}}
    assert snapshot.shared_node(sd, copied) is None
    copied["opt"]["lrs"] = sd["opt"]["lrs"]
    assert snapshot.shared_node(sd, copied) == ("opt.lrs", "list")
    # A tuple of plain values may be the caller's own (upstream hands it back); one with a
    # tensor may not.
    plain = sd["opt"]["hyper"].betas
    assert snapshot.shared_node(sd, {"betas": plain}) is None
    pair = (sd["w"], 1)
    assert snapshot.shared_node({"pair": pair}, {"pair": pair}) == ("pair", "tuple")
    assert snapshot.shared_node(sd, {"w": sd["w"]}) == ("w", "Tensor")
