"""BROKEN: a defaultdict staged without its default_factory. Dict subclasses are rebuilt as an
empty instance of their class, then filled: ``type(d)()``. An OrderedDict comes out right, but a
defaultdict loses its factory, so a missing key of the staged dict raises KeyError where the
source's made an entry (torch.optim keeps its per-parameter state in a defaultdict(dict)). Mirrors
examples/broken/drops_default_factory.cpp."""

from stagekit_torch_examples.correct import CorrectStager


class DropsDefaultFactory(CorrectStager):
    def copy_node(self, obj, memo, non_blocking):
        if not isinstance(obj, dict) or type(obj) is dict:
            return super().copy_node(obj, memo, non_blocking)
        result = type(obj)()  # the flaw: a defaultdict's default_factory is not passed on
        self.remember(memo, obj, result)
        for key, value in obj.items():
            self._path.append(key)
            result[self.copy(key, memo, non_blocking)] = self.copy(value, memo, non_blocking)
            self._path.pop()
        return result
