"""Rebuilds namedtuples as plain tuples and dict subclasses (OrderedDict, defaultdict) as plain
dicts: the items are right, the types are lost."""

from stagekit_torch_examples.correct import CorrectStager


class PlainContainers(CorrectStager):
    def copy(self, obj, memo, non_blocking):
        if isinstance(obj, dict) and type(obj) is not dict:
            result = {key: self.copy(value, memo, non_blocking) for key, value in obj.items()}
            self.remember(memo, obj, result)
            return result
        if isinstance(obj, tuple) and type(obj) is not tuple:
            result = tuple(self.copy(item, memo, non_blocking) for item in obj)
            self.remember(memo, obj, result)
            return result
        return super().copy(obj, memo, non_blocking)
