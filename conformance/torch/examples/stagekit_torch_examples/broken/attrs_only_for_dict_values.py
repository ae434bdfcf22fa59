"""BROKEN: tensor attributes are carried only for tensors held directly by a dict. The stager
copies a tensor's Python attributes in its dict walk ("a state dict maps names to tensors"), so a
tensor reached inside a list, tuple, dataclass, __slots__ object or as another tensor's attribute
is staged without its attributes: an optimizer state kept in a list of tensors, or a module's
tensors held by a config object, lose their `_is_sharded`, names and the like. Spec B.1.5 step 4
(every tensor's instance dict is deep-copied, wherever the tensor is reached).
"""
from stagekit_torch_examples.correct import CorrectStager


class AttrsOnlyForDictValues(CorrectStager):
    def stage(self, state_dict, non_blocking=False):
        self._kinds = []
        return super().stage(state_dict, non_blocking)

    def copy_node(self, obj, memo, non_blocking):
        self._kinds.append(type(obj))
        try:
            return super().copy_node(obj, memo, non_blocking)
        finally:
            self._kinds.pop()

    def copy_tensor(self, tensor, memo, non_blocking):
        parent = self._kinds[-2] if len(self._kinds) >= 2 else None
        if parent is not None and issubclass(parent, dict):
            return super().copy_tensor(tensor, memo, non_blocking)
        staged = self.staged_storage_of(tensor, memo, non_blocking)
        result = self.rebuild_view(tensor, staged)
        self.remember(memo, tensor, result)
        return result
