"""BROKEN: a tensor's plain attributes are copied once and then reused. The deep copy of each
attribute value holding no tensor (a name, a flag, a config dict) is kept per source tensor
object, and later stages of the same tensor set the kept copies again instead of copying the
attribute anew ("attributes are set when the model is built and never change"). Attributes holding
tensors are staged every time. A tensor whose attribute changed between two checkpoints (a
parameter's name after a module was renamed, a sharding hint, a `_is_sharded` flag turned on)
keeps its first value in every later checkpoint. Spec B.1.5 step 4 (every entry of the source's
instance dict is deep-copied at every stage).
"""

import weakref

from stagekit_torch_examples.correct import CorrectStager
from stagekit_torch_examples.plain_data import plain_data


class StaleTensorAttributes(CorrectStager):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._attrs = {}  # id(source tensor) -> (weakref to it, {name: staged copy})

    def _kept_attributes(self, tensor):
        entry = self._attrs.get(id(tensor))
        if entry is None or entry[0]() is not tensor:
            entry = (weakref.ref(tensor, lambda _, k=id(tensor): self._attrs.pop(k, None)), {})
            self._attrs[id(tensor)] = entry
        return entry[1]

    def copy_tensor(self, tensor, memo, non_blocking):
        staged = self.staged_storage_of(tensor, memo, non_blocking)
        result = self.rebuild_view(tensor, staged)
        self.remember(memo, tensor, result)
        kept = self._kept_attributes(tensor)
        for name, value in tensor.__dict__.items():
            self._path.append(name)
            if name in kept:
                copied = kept[name]
            else:
                copied = self.copy(value, memo, non_blocking)
                if plain_data(value):
                    kept[name] = copied
            setattr(result, name, copied)
            self._path.pop()
        return result

    def close(self):
        self._attrs.clear()
        super().close()
