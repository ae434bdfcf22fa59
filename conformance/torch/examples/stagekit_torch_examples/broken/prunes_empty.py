"""Leaves a dict entry whose value is an empty container (dict, list, tuple, set) out of the staged
dict, as code that skips "nothing to save" does: an optimizer's ``state`` before its first step, or
a module without buffers, is gone from the checkpoint. Every other entry is staged exactly. Mirrors
the C++ variant of the same name."""

from stagekit_torch_examples.correct import CorrectStager

_CONTAINERS = (dict, list, tuple, set, frozenset)


class PrunesEmpty(CorrectStager):
    def copy_node(self, obj, memo, non_blocking):
        result = super().copy_node(obj, memo, non_blocking)
        if isinstance(obj, dict):
            for key in [k for k, v in result.items() if isinstance(v, _CONTAINERS) and not v]:
                del result[key]
        return result
