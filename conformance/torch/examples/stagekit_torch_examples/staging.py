"""The asynchronous staging surface of checkpointing, written the way PyTorch's
torch.distributed.checkpoint.staging works, over the correct stager: a DefaultStager, a
BlockingAsyncStager, an async_save and its load (see stagekit_torch.protocol for the protocol).

It keeps the corrections stagekit's suite asks for (spec C.2): buffers are reused across stages
(the cache is never dropped after a stage), stages run one at a time in order, close() waits for
them, and a closed stager holds no buffer (it forgets its last result; PyTorch's keeps the future
of its last stage, and with it the staged dict).

``AsyncStager`` is the correct stager's factory with this surface attached: the spec
``torch:stagekit_torch_examples.staging:AsyncStager`` runs the suite's async cases too.
"""

import concurrent.futures
import os

import torch

from .correct import CorrectStager

CHECKPOINT_FILE = "state_dict.pt"


class DefaultStager:
    """PyTorch's DefaultStager (StagingOptions in its order): one worker thread in async mode."""

    should_synchronize_after_execute = True

    def __init__(self, use_pinned_memory=True, use_shared_memory=True, use_async_staging=True,
                 use_non_blocking_copy=True, stager_factory=CorrectStager):
        if use_non_blocking_copy and not torch.cuda.is_available():
            raise RuntimeError("a non-blocking copy (use_non_blocking_copy) needs an accelerator, "
                               "and torch has none")
        self._stager = stager_factory(pin_memory=use_pinned_memory, share_memory=use_shared_memory)
        self._non_blocking = use_non_blocking_copy
        self._executor = (concurrent.futures.ThreadPoolExecutor(max_workers=1)
                          if use_async_staging else None)
        self._future = None
        self._closed = False

    def stage(self, state_dict, **kwargs):
        if self._closed:
            raise ValueError("stage() after close()")
        if self._executor is None:
            return self._stage(state_dict)
        # The caller's current stream may still be writing the sources: the worker's copies wait
        # for what it has queued by now (PyTorch's staging stream waits for nothing).
        produced = None
        if torch.cuda.is_available():
            produced = torch.cuda.Event()
            produced.record(torch.cuda.current_stream())
        self._future = self._executor.submit(self._stage, state_dict, produced)
        return self._future

    def _stage(self, state_dict, produced=None):
        if produced is not None:
            torch.cuda.current_stream().wait_event(produced)
        staged = self._stager.stage(state_dict, non_blocking=self._non_blocking)
        if self._non_blocking:
            torch.cuda.synchronize()
        return staged

    def synchronize_staging(self):
        if self._future is not None:
            self._future.result()

    def close(self):
        if self._closed:
            return
        self._closed = True
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self._stager.close()
        self.forget_last_result()

    def forget_last_result(self):
        """Drops the last stage's future unless it failed (its error stays for
        synchronize_staging())."""
        if self._future is not None and self._future.exception() is None:
            self._future = None


class StructureChanged(ValueError):
    """A cached BlockingAsyncStager got a state dict of another structure (PyTorch's
    CompanionMismatch)."""


def _structure(obj, path="", out=None):
    """{path: (type, shape, dtype)} of every leaf and container of a state dict."""
    out = {} if out is None else out
    if isinstance(obj, dict):
        out[path] = ("dict", tuple(obj.keys()))
        for key, value in obj.items():
            _structure(value, f"{path}.{key}", out)
    elif isinstance(obj, (list, tuple)):
        out[path] = (type(obj).__name__, len(obj))
        for i, value in enumerate(obj):
            _structure(value, f"{path}[{i}]", out)
    elif isinstance(obj, torch.Tensor):
        out[path] = ("tensor", tuple(obj.shape), obj.dtype)
    return out


_CHECKED_LEAVES = (torch.Tensor, int, float, str, bytes, type(None))


def _type_check(obj, path=""):
    """Raises ValueError at the first leaf PyTorch's type check refuses (anything but a tensor,
    a scalar, a string, bytes or None, under dicts, lists and tuples)."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            _type_check(value, f"{path}.{key}" if path else str(key))
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            _type_check(value, f"{path}[{i}]")
    elif not isinstance(obj, _CHECKED_LEAVES):
        raise ValueError(f"Unexpected value type {type(obj).__name__} at {path or '<root>'}")


class BlockingAsyncStager:
    """PyTorch's BlockingAsyncStager: fresh pageable buffers at every stage, or one pinned cache
    that every stage refills (a state dict of another structure is refused). Without the cache,
    ``type_check`` refuses unknown leaves; the cached path always type-checks, as PyTorch's."""

    should_synchronize_after_execute = False

    def __init__(self, cache_staged_state_dict=False, type_check=False,
                 stager_factory=CorrectStager):
        self._cache = cache_staged_state_dict
        self._type_check = type_check
        self._factory = stager_factory
        self._stager = stager_factory(pin_memory=True) if cache_staged_state_dict else None
        self._structure = None
        self._closed = False

    def stage(self, state_dict, **kwargs):
        if self._closed:
            raise ValueError("stage() after close()")
        if self._cache or self._type_check:
            _type_check(state_dict)
        if not self._cache:
            stager = self._factory()
            try:
                return stager.stage(state_dict)
            finally:
                stager.close()
        structure = _structure(state_dict)
        if self._structure is None:
            self._structure = structure
        elif structure != self._structure:
            # The outermost path that differs below the root (a key added or removed shows at its
            # own path, not only at its dict's).
            differ = {path for path, _ in set(structure.items()) ^ set(self._structure.items())}
            changed = min(differ - {""}, default="").lstrip(".")
            raise StructureChanged(f"the state dict changed structure at '{changed or '<root>'}' "
                                   "since the cache was made")
        return self._stager.stage(state_dict)

    def synchronize_staging(self):
        pass

    def close(self):
        """Drops the cache (PyTorch's close() is a no-op and keeps it); later stages are refused."""
        if self._closed:
            return
        self._closed = True
        if self._stager is not None:
            self._stager.close()
            self._stager = None
        self._structure = None


def async_save(state_dict, checkpoint_dir, stager=None, default_stager=DefaultStager):
    """Stages ``state_dict`` with ``stager`` (or one of its own, closed once the checkpoint is
    written) and writes it into ``checkpoint_dir`` on another thread; returns (staging future,
    upload future), the upload's result describing the file written."""
    own = stager is None
    if own:
        stager = default_stager(False, False, True, False)
    staged = stager.stage(state_dict)
    if not isinstance(staged, concurrent.futures.Future):
        done = concurrent.futures.Future()
        done.set_result(staged)
        staged = done
    uploader = concurrent.futures.ThreadPoolExecutor(max_workers=1)

    def upload():
        try:
            os.makedirs(checkpoint_dir, exist_ok=True)
            path = os.path.join(checkpoint_dir, CHECKPOINT_FILE)
            torch.save(staged.result(), path)
            return f"{path}: {os.path.getsize(path)} bytes"
        finally:
            if own:
                stager.close()

    upload_future = uploader.submit(upload)
    uploader.shutdown(wait=False)
    return staged, upload_future


def load_checkpoint(checkpoint_dir):
    return torch.load(os.path.join(checkpoint_dir, CHECKPOINT_FILE))


class Staging:
    """The async-staging surface (stagekit_torch.protocol) of these classes."""

    def __init__(self, default_stager=DefaultStager, blocking_async_stager=BlockingAsyncStager):
        self._default_stager = default_stager
        self._blocking_async_stager = blocking_async_stager

    def default_stager(self, use_pinned_memory, use_shared_memory, use_async_staging,
                       use_non_blocking_copy):
        return self._default_stager(use_pinned_memory, use_shared_memory, use_async_staging,
                                    use_non_blocking_copy)

    def blocking_async_stager(self, cache_staged_state_dict, type_check):
        return self._blocking_async_stager(cache_staged_state_dict, type_check)

    def async_save(self, state_dict, checkpoint_dir, stager):
        return async_save(state_dict, checkpoint_dir, stager, self._default_stager)

    def load_checkpoint(self, checkpoint_dir):
        return load_checkpoint(checkpoint_dir)


class AsyncStager(CorrectStager):
    """The correct stager, with the asynchronous staging surface of this module."""

    stagekit_async_staging = Staging()
