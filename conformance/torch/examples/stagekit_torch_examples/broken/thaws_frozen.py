"""BROKEN: frozen objects. Frozen dataclass instances are rebuilt as instances of a twin class that
is not frozen (same name and fields), so a staged frozen dataclass accepts field assignments.
Mirrors examples/broken/thaws_frozen.cpp.

Caught by objects_exact and full_contract ("frozen: source frozen=true, staged frozen=false")."""

import dataclasses

from stagekit_torch_examples.correct import CorrectStager

_thawed = {}


def _thawed_class(cls):
    """A dataclass like ``cls`` (name, module, fields, other class attributes) but not frozen."""
    thawed = _thawed.get(cls)
    if thawed is None:
        thawed = dataclasses.make_dataclass(cls.__name__, [f.name for f in dataclasses.fields(cls)])
        thawed.__qualname__ = cls.__qualname__
        thawed.__module__ = cls.__module__
        for name, value in vars(cls).items():
            if not name.startswith("__") and name not in vars(thawed):
                setattr(thawed, name, value)
        _thawed[cls] = thawed
    return thawed


class ThawsFrozen(CorrectStager):
    def copy_node(self, obj, memo, non_blocking):
        result = super().copy_node(obj, memo, non_blocking)
        cls = type(result)
        if (dataclasses.is_dataclass(result) and not isinstance(result, type)
                and cls.__dataclass_params__.frozen):
            object.__setattr__(result, "__class__", _thawed_class(cls))  # past the frozen guard
        return result
