"""Factories and stagers that break the protocol of stagekit_torch.protocol, one way each: the suite
must turn each into a clear per-case outcome, never a crash of the runner."""

import ctypes
import time

import torch

from stagekit_torch_examples.correct import CorrectStager

NOT_CALLABLE = 3


class RaisesInInit:
    def __init__(self, pin_memory=False, share_memory=False):
        raise RuntimeError("cannot start: no staging area configured")

    def stage(self, state_dict, non_blocking=False):
        return state_dict


class NoStage:
    def __init__(self, pin_memory=False, share_memory=False):
        pass


class ReturnsList(CorrectStager):
    def stage(self, state_dict, non_blocking=False):
        return list(super().stage(state_dict).values())


class WrongDevice(CorrectStager):
    def stage(self, state_dict, non_blocking=False):
        staged = super().stage(state_dict, non_blocking)
        return {k: v.to("meta") if isinstance(v, torch.Tensor) else v for k, v in staged.items()}


class StorageTooSmall(CorrectStager):
    def stage(self, state_dict, non_blocking=False):
        staged = super().stage(state_dict)
        for value in staged.values():
            if isinstance(value, torch.Tensor) and value.numel() > 1:
                value.storage().resize_(1)  # the view now reaches past its storage
                break
        return staged


class Hangs(CorrectStager):
    def stage(self, state_dict, non_blocking=False):
        while True:
            time.sleep(1)


class Segfaults(CorrectStager):
    def stage(self, state_dict, non_blocking=False):
        return ctypes.string_at(0)  # reads address 0 in C: SIGSEGV
