"""Every difference between the torch versions the torch route runs on, in one place.

torch 1.13 (Debian) has no ``Tensor.untyped_storage()``: a tensor's storage is a ``TypedStorage``
wrapping an ``UntypedStorage``, and neither Python object is preserved (each call makes a new one).
torch 2.x has ``untyped_storage()`` and preserves the storage's Python object while it lives. The
identity of a storage is the address of its C++ ``StorageImpl`` (``_cdata``) on both: stable for
the storage's life, and shared by every view of it. Which dtypes exist depends on the version too
(float8 from 2.1, uint16/32/64 from 2.3); DTensor from 2.4 (``torch.distributed.tensor``).
"""

import contextlib
import re

import torch

VERSION = tuple(int(part) for part in re.match(r"(\d+)\.(\d+)", torch.__version__).groups())
HAS_UNTYPED_STORAGE = hasattr(torch.Tensor, "untyped_storage")

# stagekit dtype name -> torch dtype, for the dtypes this torch has.
DTYPES = {
    name: getattr(torch, name)
    for name in [
        "bool", "uint8", "int8", "int16", "int32", "int64", "uint16", "uint32", "uint64",
        "float16", "bfloat16", "float32", "float64", "complex64", "complex128",
        "float8_e4m3fn", "float8_e5m2",
    ]
    if isinstance(getattr(torch, name, None), torch.dtype)
}
DTYPE_NAMES = {dtype: name for name, dtype in DTYPES.items()}


# untyped_storage(tensor): the untyped storage behind a tensor (a new Python object per call on
# torch 1.x, where Tensor._storage() is tensor.storage()._storage without the TypedStorage).
untyped_storage = torch.Tensor.untyped_storage if HAS_UNTYPED_STORAGE else torch.Tensor._storage


def device_type(tensor):
    """'cpu', 'cuda' or another device type, cheaply for the first two."""
    if tensor.is_cuda:
        return "cuda"
    return "cpu" if tensor.get_device() < 0 and not tensor.is_meta else tensor.device.type


def storage_key(storage):
    """The identity of a storage: its StorageImpl, the same for every view and every wrapper."""
    return storage._cdata


def tensor_on_storage(storage, dtype, storage_offset, sizes, strides):
    """A new tensor of ``dtype`` over ``storage`` (an untyped storage) with exactly this layout."""
    result = torch.empty(0, dtype=dtype, device=storage.device)
    if HAS_UNTYPED_STORAGE:
        return result.set_(storage, storage_offset, sizes, strides)
    typed = torch.storage.TypedStorage(wrap_storage=storage, dtype=dtype)
    return result.set_(typed, storage_offset, sizes, strides)


def new_storage(nbytes, device="cpu"):
    """A new untyped storage of ``nbytes`` bytes on ``device``."""
    return untyped_storage(torch.empty(nbytes, dtype=torch.uint8, device=device))


def _shared_mapping(nbytes):
    """A MAP_SHARED mapping of a new memfd of ``nbytes`` bytes (the descriptor is closed: the
    mapping keeps the file)."""
    import mmap
    import os
    fd = os.memfd_create("stagekit-torch-shared", os.MFD_CLOEXEC)
    try:
        os.ftruncate(fd, nbytes)
        return mmap.mmap(fd, nbytes, flags=mmap.MAP_SHARED)
    finally:
        os.close(fd)


def shared_storage(nbytes):
    """A new untyped CPU storage of ``nbytes`` bytes in shared memory another process can map: a
    memfd mapped MAP_SHARED, which keeps no descriptor open; the mapping goes when the storage
    dies. Unlike ``Tensor.share_memory_()`` of torch 1.13, a failure (the file cannot grow) leaks
    no descriptor, and many storages do not exhaust the descriptor limit."""
    if nbytes == 0:
        return new_storage(0)
    return untyped_storage(torch.frombuffer(_shared_mapping(nbytes), dtype=torch.uint8))


class SharedArenas:
    """Small storages in shared memory, carved out of larger shared mappings (arenas).

    One mapping per storage runs into the limit on mappings per process (vm.max_map_count, 65530
    by default) at tens of thousands of storages: mappings of different files never merge. Each
    storage keeps its arena mapped; the arena goes when the last storage carved from it dies.
    Where an arena cannot be made (the file cannot grow that far), the storage gets its own
    mapping, as shared_storage() makes it. With ``align`` the page size, no two storages share a
    page: what is done to the pages of one (page-locking, unlocking) leaves the others alone."""

    ARENA_BYTES = 16 << 20

    def __init__(self, align=64):
        self._align = align
        self._arena = None
        self._used = 0

    def storage(self, nbytes):
        size = -(-max(nbytes, 1) // self._align) * self._align
        if self._arena is None or self._used + size > len(self._arena):
            try:
                self._arena = memoryview(_shared_mapping(self.ARENA_BYTES))
            except OSError:
                self._arena = None
                return shared_storage(nbytes)
            self._used = 0
        part = self._arena[self._used:self._used + nbytes]
        self._used += size
        return untyped_storage(torch.frombuffer(part, dtype=torch.uint8))

    def release(self):
        """Makes no more storages from the current arena (it goes with its last storage)."""
        self._arena = None


def dtensor_type():
    """The DTensor class where this torch has it, else None."""
    for module in ("torch.distributed.tensor", "torch.distributed._tensor"):
        try:
            mod = __import__(module, fromlist=["DTensor"])
            return getattr(mod, "DTensor")
        except (ImportError, AttributeError):
            continue
    return None


def pytorch_state_dict_stager():
    """PyTorch's own StateDictStager, or (None, reason) where this torch has none."""
    try:
        from torch.distributed.checkpoint._state_dict_stager import StateDictStager
    except ImportError:
        return None, (f"torch {torch.__version__} has no torch.distributed.checkpoint."
                      "_state_dict_stager.StateDictStager (newer PyTorch releases have it)")
    return StateDictStager, ""


def pytorch_async_staging():
    """PyTorch's asynchronous staging surface (DefaultStager, BlockingAsyncStager, async_save) as
    a stagekit_torch.protocol async-staging surface, or (None, reason) where this torch has none."""
    try:
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint import staging
        staging.DefaultStager, staging.StagingOptions, staging.BlockingAsyncStager  # noqa: B018
    except (ImportError, AttributeError):
        return None, (f"torch {torch.__version__} has no torch.distributed.checkpoint.staging."
                      "DefaultStager (newer PyTorch releases have it)")
    return _PyTorchAsyncStaging(dcp, staging), ""


class _PyTorchAsyncStaging:
    """PyTorch's own DefaultStager, BlockingAsyncStager, async_save and load, behind the surface
    stagekit_torch.protocol describes (single process: no process group, no_dist)."""

    def __init__(self, dcp, staging):
        self._dcp = dcp
        self._staging = staging

    def default_stager(self, use_pinned_memory, use_shared_memory, use_async_staging,
                       use_non_blocking_copy):
        options = self._staging.StagingOptions(use_pinned_memory, use_shared_memory,
                                               use_async_staging, use_non_blocking_copy)
        return self._staging.DefaultStager(options)

    def blocking_async_stager(self, cache_staged_state_dict, type_check):
        return self._staging.BlockingAsyncStager(cache_staged_state_dict=cache_staged_state_dict,
                                                 type_check=type_check)

    def async_save(self, state_dict, checkpoint_dir, stager):
        import concurrent.futures
        kwargs = {"checkpoint_id": checkpoint_dir, "no_dist": True}
        if stager is not None:
            kwargs["async_stager"] = stager
        response = self._dcp.async_save(state_dict, **kwargs)
        if hasattr(response, "upload_completion"):  # AsyncSaveResponse (newer releases)
            return response.staging_completion, response.upload_completion
        staged = concurrent.futures.Future()  # older releases stage before they return
        staged.set_result(None)
        return staged, response

    def load_checkpoint(self, checkpoint_dir):
        from torch.distributed.checkpoint.state_dict_loader import _load_state_dict_from_keys
        return _load_state_dict_from_keys(checkpoint_id=checkpoint_dir)


class StorageCache:
    """A stager's cache: source storage -> staged storage, keyed by the source's identity.

    torch 2.x preserves a storage's Python object while the storage lives, so the cache holds its
    keys weakly: an entry goes when its source storage dies (as PyTorch's StateDictStager does).
    torch 1.x makes a new storage object per call, so nothing tells when a storage dies: the cache
    holds the source storage itself, which keeps its identity from being reused while the entry
    lives; entries then go on ``clear()``.
    """

    def __init__(self):
        self._entries = {}

    def get(self, storage):
        entry = self._entries.get(storage_key(storage))
        return entry[0] if entry is not None else None

    def put(self, storage, staged):
        key = storage_key(storage)
        if HAS_UNTYPED_STORAGE:
            import weakref
            weakref.finalize(storage, self._entries.pop, key, None)
            self._entries[key] = (staged, None)
        else:
            self._entries[key] = (staged, storage)

    def discard(self, storage):
        self._entries.pop(storage_key(storage), None)

    def clear(self):
        self._entries.clear()

    def __len__(self):
        return len(self._entries)


def callers_stream(handle, device_index):
    """A context in which torch's current stream is the caller's CUDA stream ``handle`` (a
    cudaStream_t as an int; 0 leaves torch's current stream as it is)."""
    if not handle:
        return contextlib.nullcontext()
    return torch.cuda.stream(torch.cuda.ExternalStream(handle, device=device_index))


def pin(address, nbytes):
    """Page-locks [address, address + nbytes): registered with CUDA where torch has a device, else
    mlock(2). Returns the function that undoes it (None where munmap undoes it by itself)."""
    if torch.cuda.is_available():
        cudart = torch.cuda.cudart()
        err = cudart.cudaHostRegister(address, nbytes, 1)
        if int(err) != 0:
            raise RuntimeError(f"Registering memory failed with cudaError: {int(err)}")
        return lambda: cudart.cudaHostUnregister(address)
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mlock(ctypes.c_void_p(address), ctypes.c_size_t(nbytes)) != 0:
        raise OSError(ctypes.get_errno(), f"mlock of {nbytes} bytes failed")
    return None


def mapped_storage(nbytes):
    """A new untyped CPU storage of ``nbytes`` bytes in its own anonymous mapping: unmapped (and so
    unlocked, if it was pinned) when the storage dies, and never left behind in the C heap the way
    large blocks freed by torch's own allocator can be (glibc's growing mmap threshold)."""
    import mmap
    if nbytes == 0:
        return new_storage(0)
    # Private: neighbouring mappings merge into one kernel mapping, so that many small storages do
    # not run into the limit on mappings per process (vm.max_map_count).
    mapping = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    return untyped_storage(torch.frombuffer(mapping, dtype=torch.uint8))


def bytes_of(storage):
    """A uint8 tensor over the whole of an untyped storage."""
    return tensor_on_storage(storage, torch.uint8, 0, (storage.nbytes(),), (1,))
