"""A correct state-dict stager on torch tensors, written the way PyTorch's StateDictStager works:
a deep copy in which every tensor is rebuilt on a CPU storage staged once per source storage (so
views stay views and sharing is kept), cached across calls (so re-staging only copies), pinned
and/or in shared memory as asked. Runs on torch 1.13 and 2.x (differences in stagekit_torch.compat).

Pinning: where torch has no CUDA device it cannot pin, so this stager page-locks with mlock(2)
itself, and says so in ``stagekit_capabilities``.
"""

import copy
import dataclasses
import mmap

import torch

from stagekit_torch import compat

__version__ = "1.0"


class CorrectStager:
    stagekit_capabilities = {"pin_memory": True}
    MAPPED_BYTES = 64 * 1024  # larger buffers get their own mapping (see compat.mapped_storage)

    def __init__(self, pin_memory=False, share_memory=False, pin_memory_min_bytes=5):
        self.pin_memory = pin_memory
        self.share_memory = share_memory
        self.pin_memory_min_bytes = pin_memory_min_bytes
        self._cache = compat.StorageCache()
        # Small shared buffers, carved out of larger shared mappings; those to be pinned apart
        # from the others, a page each, so that pinning one never pins a neighbour.
        self._shared_arenas = compat.SharedArenas()
        self._pinned_shared_arenas = compat.SharedArenas(align=mmap.PAGESIZE)

    def stage(self, state_dict, non_blocking=False):
        self._active = set()  # the containers being copied: reaching one again is a cycle
        self._path = []  # where the copy is, for error messages
        self._added = []  # sources first cached by this call: a failed call takes them out again
        try:
            with torch.no_grad():
                return self.copy(state_dict, {}, non_blocking)
        except BaseException:
            for source in self._added:
                self._cache.discard(source)
            raise
        finally:
            self._added = []

    def path(self):
        text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in self._path)
        return text.lstrip(".") or "<root>"

    def close(self):
        self._cache.clear()
        self._shared_arenas.release()
        self._pinned_shared_arenas.release()

    # ---- the deep copy ---------------------------------------------------------------------------

    def copy(self, obj, memo, non_blocking):
        if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes)):
            return obj
        if id(obj) in self._active:
            raise ValueError(f"the state dict holds a cycle: this {type(obj).__name__} contains "
                             f"itself (at {self.path()})")
        found = memo.get(id(obj))
        if found is not None:
            return found[0]
        self._active.add(id(obj))
        try:
            result = self.copy_node(obj, memo, non_blocking)
        finally:
            self._active.discard(id(obj))
        self.remember(memo, obj, result)
        return result

    def copy_node(self, obj, memo, non_blocking):
        if isinstance(obj, torch.Tensor):
            try:
                return self.copy_tensor(obj, memo, non_blocking)
            except Exception as e:
                if not getattr(e, "stagekit_path_noted", False) and hasattr(e, "add_note"):
                    e.add_note(f"at {self.path()}")
                    e.stagekit_path_noted = True
                raise
        if isinstance(obj, dict):
            result = self.empty_dict_like(obj)
            self.remember(memo, obj, result)
            for key, value in obj.items():
                self._path.append(key)
                result[self.copy(key, memo, non_blocking)] = self.copy(value, memo, non_blocking)
                self._path.pop()
            return result
        if type(obj) is list:
            result = []
            self.remember(memo, obj, result)
            for i, item in enumerate(obj):
                self._path.append(i)
                result.append(self.copy(item, memo, non_blocking))
                self._path.pop()
            return result
        if type(obj) is tuple:
            items = []
            for i, item in enumerate(obj):
                self._path.append(i)
                items.append(self.copy(item, memo, non_blocking))
                self._path.pop()
            return obj if all(a is b for a, b in zip(items, obj)) else tuple(items)
        if isinstance(obj, tuple) and hasattr(type(obj), "_fields"):  # a namedtuple
            items = []
            for name, item in zip(type(obj)._fields, obj):
                self._path.append(name)
                items.append(self.copy(item, memo, non_blocking))
                self._path.pop()
            return type(obj)._make(items)
        if isinstance(obj, (set, frozenset)):  # hashable items only: a new set of the same items
            return type(obj)(copy.deepcopy(item) for item in obj)
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            result = object.__new__(type(obj))
            self.remember(memo, obj, result)
            for f in dataclasses.fields(obj):
                self._path.append(f.name)
                result.__dict__[f.name] = self.copy(getattr(obj, f.name), memo, non_blocking)
                self._path.pop()
            return result
        # An object with __slots__ is rebuilt around its copied slots, unless it copies itself (a
        # __deepcopy__ of its own decides what it holds, as in copy.deepcopy).
        slots = _slot_names(type(obj))
        if slots is not None and not hasattr(obj, "__dict__") and not hasattr(obj, "__deepcopy__"):
            result = object.__new__(type(obj))
            self.remember(memo, obj, result)
            for name in slots:
                if hasattr(obj, name):
                    self._path.append(name)
                    setattr(result, name, self.copy(getattr(obj, name), memo, non_blocking))
                    self._path.pop()
            return result
        try:
            return copy.deepcopy(obj)
        except Exception as e:
            if hasattr(e, "add_note"):
                e.add_note(f"at {self.path()}")
            raise

    @staticmethod
    def empty_dict_like(obj):
        """An empty dict of the source's type: a dict subclass stays one (an OrderedDict, a
        defaultdict with its default_factory)."""
        result = {} if type(obj) is dict else copy.copy(obj)
        result.clear()
        return result

    @staticmethod
    def remember(memo, obj, result):
        memo[id(obj)] = (result, obj)  # the source is kept alive so that its id is not reused

    def copy_tensor(self, tensor, memo, non_blocking):
        staged = self.staged_storage_of(tensor, memo, non_blocking)
        result = self.rebuild_view(tensor, staged)
        self.remember(memo, tensor, result)
        self.copy_attributes(tensor, result, memo, non_blocking)
        return result

    def copy_attributes(self, tensor, result, memo, non_blocking):
        """The tensor's Python attributes, each copied onto ``result`` under its own path."""
        for name, value in tensor.__dict__.items():
            self._path.append(name)
            setattr(result, name, self.copy(value, memo, non_blocking))
            self._path.pop()

    @staticmethod
    def storage_memo_key(tensor, source):
        """What one stage() call knows a source storage by: the storage alone."""
        return ("storage", compat.storage_key(source))

    def staged_storage_of(self, tensor, memo, non_blocking):
        """The staged buffer of the tensor's storage, staged once per stage() call."""
        source = compat.untyped_storage(tensor)
        key = self.storage_memo_key(tensor, source)
        staged = memo.get(key)
        if staged is None:
            staged = self.stage_storage(source, non_blocking)
            memo[key] = staged
        return staged

    @staticmethod
    def rebuild_view(tensor, staged):
        """A new tensor on ``staged`` with the tensor's dtype, offset, shape and strides."""
        return compat.tensor_on_storage(staged, tensor.dtype, tensor.storage_offset(),
                                        tensor.shape, tensor.stride())

    # ---- one storage -----------------------------------------------------------------------------

    def stage_storage(self, source, non_blocking):
        staged = self._cache.get(source)
        if staged is None:
            staged = self.allocate(source.nbytes())
            self._cache.put(source, staged)
            self._added.append(source)
            self.copy_storage(staged, source, non_blocking)
        else:
            if staged.nbytes() != source.nbytes():
                raise AssertionError(f"the cached copy has {staged.nbytes()} bytes but its source "
                                     f"now has {source.nbytes()}: a source storage was resized in "
                                     "place")
            self.recopy_storage(staged, source, non_blocking)
        return staged

    def recopy_storage(self, staged, source, non_blocking):
        """A cache hit: the new values go into the buffer staged before."""
        self.copy_storage(staged, source, non_blocking)

    @staticmethod
    def copy_storage(staged, source, non_blocking):
        if source.nbytes() > 0:
            compat.bytes_of(staged).copy_(compat.bytes_of(source), non_blocking=non_blocking)

    def allocate(self, nbytes):
        pin = self.pin_memory and nbytes >= max(self.pin_memory_min_bytes, 1)
        if self.share_memory and 0 < nbytes < self.MAPPED_BYTES:
            staged = (self._pinned_shared_arenas if pin else self._shared_arenas).storage(nbytes)
        elif self.share_memory and nbytes > 0:
            staged = compat.shared_storage(nbytes)
        elif pin or nbytes >= self.MAPPED_BYTES:
            staged = compat.mapped_storage(nbytes)
        else:
            staged = compat.new_storage(nbytes)
        if pin:
            self.pin(staged, nbytes)
        return staged

    @staticmethod
    def pin(staged, nbytes):
        """Page-locks a new buffer for as long as it lives."""
        unpin = compat.pin(staged.data_ptr(), nbytes)
        if unpin is not None and compat.HAS_UNTYPED_STORAGE:
            import weakref
            weakref.finalize(staged, unpin)


def _slot_names(cls):
    """The slot names of a class with __slots__ (its bases' first), or None without any."""
    if not any("__slots__" in vars(k) for k in cls.__mro__):
        return None
    names = []
    for k in reversed(cls.__mro__):
        slots = vars(k).get("__slots__", ())
        names.extend([slots] if isinstance(slots, str) else slots)
    return [n for n in names if n not in ("__weakref__", "__dict__")]
