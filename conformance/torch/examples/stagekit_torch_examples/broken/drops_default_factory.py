"""BROKEN: a defaultdict staged without its default_factory. Dict subclasses are rebuilt as an
empty instance of their class, then filled: ``type(d)()``. An OrderedDict comes out right, but a
defaultdict loses its factory, so a missing key of the staged dict raises KeyError where the
source's made an entry (torch.optim keeps its per-parameter state in a defaultdict(dict)). Mirrors
examples/broken/drops_default_factory.cpp."""

from stagekit_torch_examples.correct import CorrectStager


class DropsDefaultFactory(CorrectStager):
    @staticmethod
    def empty_dict_like(obj):
        return {} if type(obj) is dict else type(obj)()  # the flaw: no default_factory passed on
