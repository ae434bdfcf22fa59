"""BROKEN: the caller's __slots__ objects are left pointing at the staged tensors. A __slots__
object is staged by writing the staged values into the source's slots and taking copy.copy() of it
(so that the class's own copy protocol builds the new object), and the source's slots are never
put back: after stage() the caller's object holds the CPU copies (pinned, shared, overwritten by
the next stage) instead of its own tensors, and training goes on updating tensors that are no
longer in its state. Dicts, lists and dataclasses are left as they were. The same flaw as
rewires_sources, on another container kind: a stager must leave its input as it was.
"""
import copy

import torch

from stagekit_torch_examples.correct import CorrectStager, _slot_names


class RewiresSlots(CorrectStager):
    def copy_node(self, obj, memo, non_blocking):
        slots = _slot_names(type(obj))
        containers = (tuple, list, dict, set, frozenset, torch.Tensor)
        if (slots is not None and not isinstance(obj, containers)
                and not hasattr(obj, "__dict__") and not hasattr(obj, "__deepcopy__")):
            for name in slots:
                if hasattr(obj, name):
                    self._path.append(name)
                    setattr(obj, name, self.copy(getattr(obj, name), memo, non_blocking))
                    self._path.pop()
            return copy.copy(obj)
        return super().copy_node(obj, memo, non_blocking)
