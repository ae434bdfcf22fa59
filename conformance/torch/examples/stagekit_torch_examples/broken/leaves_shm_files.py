"""Stages share_memory buffers as files in /dev/shm mapped MAP_SHARED, so that another process can
open them by name, and never removes the files. Each buffer is shared and reachable, and its
mapping goes with the storage; but once the stager is closed and its results are dropped, no
process maps the files, yet each keeps its memory until someone deletes it. Running it leaves
/dev/shm/stagekit-torch-example-<pid>-<n> behind (the test that runs it removes them)."""

import itertools
import mmap
import os

import torch

from stagekit_torch import compat
from stagekit_torch_examples.correct import CorrectStager

_serial = itertools.count()


class LeavesShmFiles(CorrectStager):
    def allocate(self, nbytes):
        if not self.share_memory or nbytes == 0:
            return super().allocate(nbytes)
        path = f"/dev/shm/stagekit-torch-example-{os.getpid()}-{next(_serial)}"
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR | os.O_CLOEXEC, 0o600)
        try:
            os.ftruncate(fd, nbytes)
            mapping = mmap.mmap(fd, nbytes, flags=mmap.MAP_SHARED)
        finally:
            os.close(fd)  # the flaw: the file is never removed
        staged = compat.untyped_storage(torch.frombuffer(mapping, dtype=torch.uint8))
        if self.pin_memory and nbytes >= max(self.pin_memory_min_bytes, 1):
            self.pin(staged, nbytes)
        return staged
