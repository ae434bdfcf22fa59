"""Copies storages of 1 MiB and more chunk by chunk, in whole chunks of 1 MiB (so that a large copy
can be interleaved with other work), and never copies the bytes after the last whole chunk. Every
storage whose size is a multiple of 1 MiB is staged exactly; any other large one ends in bytes that
are zero (a new buffer) or those of the stage before (a cached one)."""

from stagekit_torch import compat
from stagekit_torch_examples.correct import CorrectStager

CHUNK = 1 << 20


class DropsCopyTail(CorrectStager):
    @staticmethod
    def copy_storage(staged, source, non_blocking):
        nbytes = source.nbytes()
        if nbytes < CHUNK:
            return CorrectStager.copy_storage(staged, source, non_blocking)
        into, out_of = compat.bytes_of(staged), compat.bytes_of(source)
        whole = nbytes // CHUNK * CHUNK  # the flaw: the bytes after it are never copied
        for start in range(0, whole, CHUNK):
            into[start:start + CHUNK].copy_(out_of[start:start + CHUNK], non_blocking=non_blocking)
