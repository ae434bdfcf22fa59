"""Keeps the staged structure from the first stage of a dict with the same top-level keys, and later
stages only refresh its tensors ("a model's state dict keeps its structure from one checkpoint to
the next"): every tensor is staged as it is now, at the path it had the first time, but a step
counter that moved, optimizer state that appeared after the first step, a list that grew or a string
that changed keep their first values. Mirrors the C++ variant of the same name."""

import copy
import dataclasses

import torch

from stagekit_torch_examples.correct import CorrectStager


def _refresh_tensors(skeleton, fresh, memo):
    """``skeleton``'s structure and non-tensor leaves, with the tensors ``fresh`` has at the same
    paths (a node reached twice is refreshed once)."""
    if id(skeleton) in memo:
        return memo[id(skeleton)]
    result = skeleton  # scalars, strings, sets, and anything whose shape changed: as first staged
    if isinstance(skeleton, torch.Tensor):
        result = fresh if isinstance(fresh, torch.Tensor) else skeleton
    elif isinstance(skeleton, dict) and isinstance(fresh, dict):
        result = copy.copy(skeleton)
        result.clear()
        for key, value in skeleton.items():
            result[key] = _refresh_tensors(value, fresh[key], memo) if key in fresh else value
    elif type(skeleton) is list and type(fresh) is list:
        result = [_refresh_tensors(was, fresh[i], memo) if i < len(fresh) else was
                  for i, was in enumerate(skeleton)]
    elif (isinstance(skeleton, tuple) and type(fresh) is type(skeleton)
          and len(fresh) == len(skeleton)):
        items = [_refresh_tensors(a, b, memo) for a, b in zip(skeleton, fresh)]
        named = hasattr(type(skeleton), "_fields")
        result = type(skeleton)._make(items) if named else tuple(items)
    elif dataclasses.is_dataclass(skeleton) and type(fresh) is type(skeleton):
        result = copy.copy(skeleton)
        for field in dataclasses.fields(skeleton):
            was, now = getattr(skeleton, field.name), getattr(fresh, field.name)
            object.__setattr__(result, field.name, _refresh_tensors(was, now, memo))
    memo[id(skeleton)] = result
    return result


class StaleSkeleton(CorrectStager):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._skeletons = {}  # the top-level keys -> the first staged result

    def stage(self, state_dict, non_blocking=False):
        # Right, but only its tensors are used again.
        staged = super().stage(state_dict, non_blocking)
        if not isinstance(state_dict, dict):
            return staged
        key = tuple(map(repr, state_dict))
        if key not in self._skeletons:
            self._skeletons[key] = staged
            return staged
        return _refresh_tensors(self._skeletons[key], staged, {})

    def close(self):
        self._skeletons.clear()
        super().close()
