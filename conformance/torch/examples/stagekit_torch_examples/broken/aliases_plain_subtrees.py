"""BROKEN: containers of plain data are handed back as the caller's own objects ("no tensor to
offload there, so nothing to copy"). A dict, list, set, dataclass or __slots__ object whose whole
subtree is plain scalars is shared between the caller's state dict and the staged one: the
training loop appending to its list, bumping a step in its dict or adding to a set after stage()
changes the checkpoint being written. Spec B.1.4 (dict, list: a new container; sets, objects:
rebuilt through their reduction); python_containers states it as "the staged set is the source
set".
"""

from stagekit_torch_examples.correct import CorrectStager
from stagekit_torch_examples.plain_data import plain_data


class AliasesPlainSubtrees(CorrectStager):
    def copy_node(self, obj, memo, non_blocking):
        if not isinstance(obj, (str, bytes)) and plain_data(obj):
            return obj
        return super().copy_node(obj, memo, non_blocking)
