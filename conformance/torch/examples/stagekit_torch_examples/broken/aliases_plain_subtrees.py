"""BROKEN: containers of plain data are handed back as the caller's own objects ("no tensor to
offload there, so nothing to copy"). A dict, list, set, dataclass or __slots__ object whose whole
subtree is plain scalars is shared between the caller's state dict and the staged one: the
training loop appending to its list, bumping a step in its dict or adding to a set after stage()
changes the checkpoint being written. Spec B.1.4 (dict, list: a new container; sets, objects:
rebuilt through their reduction); python_containers states it as "the staged set is the source
set".
"""

import dataclasses

from stagekit_torch_examples.correct import CorrectStager


_SCALARS = (type(None), bool, int, float, complex, str, bytes)


def plain_data(obj, seen=None):
    """Whether ``obj`` is a container (dict, list, tuple, set, dataclass, __slots__ object) whose
    whole subtree holds only plain scalars and such containers: no tensor, nothing else."""
    if isinstance(obj, _SCALARS):
        return True
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return True
    seen.add(id(obj))
    if isinstance(obj, dict):
        return all(plain_data(k, seen) and plain_data(v, seen) for k, v in obj.items())
    if isinstance(obj, (list, tuple, set, frozenset)):
        return all(plain_data(x, seen) for x in obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return all(plain_data(getattr(obj, f.name), seen) for f in dataclasses.fields(obj))
    names = [n for k in type(obj).__mro__ for n in vars(k).get("__slots__", ())]
    if names and not hasattr(obj, "__dict__") and not hasattr(obj, "__deepcopy__"):
        return all(plain_data(getattr(obj, n), seen) for n in names if hasattr(obj, n))
    return False


class AliasesPlainSubtrees(CorrectStager):
    def copy_node(self, obj, memo, non_blocking):
        if not isinstance(obj, (str, bytes)) and plain_data(obj):
            return obj
        return super().copy_node(obj, memo, non_blocking)
