"""BROKEN: only dicts, lists, dataclass objects and tensors are memoised. A tuple, namedtuple,
set, frozenset or __slots__ object reached twice in one state dict ("values: their identity does
not matter") is staged twice, into two distinct objects (the tensors inside are still staged
once). The staged dict no longer has the shape of the source's: a checkpoint pickled from it
stores the node twice, and code relying on `a is b` (tied configs, a shared schedule) sees two.
Spec B.1.4 steps 1 and 5 (every copy is memoised, so the same object reached twice yields one
copy) and C.1.7.
"""
import torch

from stagekit_torch_examples.correct import CorrectStager, _slot_names


class MemoOnlyCommonKinds(CorrectStager):
    def remember(self, memo, obj, result):
        if isinstance(obj, (tuple, set, frozenset)):
            return
        if (not isinstance(obj, torch.Tensor) and _slot_names(type(obj)) is not None
                and not hasattr(obj, "__dict__")):
            return
        memo[id(obj)] = (result, obj)
