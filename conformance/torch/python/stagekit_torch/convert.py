"""The Python halves of the conversion between stagekit values and torch objects.

The C++ bridge walks the trees; what is easier said in Python lives here: one dataclass per stagekit
object type, the stand-in for a leaf that cannot be copied, and the facts of one tensor.
"""

import dataclasses
import re
import traceback

import torch

from . import compat

_dataclasses = {}


def dataclass_type(type_name, field_names, frozen):
    """One class per object type (name, fields, frozen), made once per process."""
    key = (type_name, tuple(field_names), bool(frozen))
    cls = _dataclasses.get(key)
    if cls is None:
        module, _, name = type_name.rpartition(".")
        cls = dataclasses.make_dataclass(name or type_name, list(field_names), frozen=bool(frozen))
        cls.__qualname__ = name or type_name
        if module:
            cls.__module__ = module
        cls.stagekit_type_name = type_name
        _dataclasses[key] = cls
    return cls


def new_object(cls):
    """An instance of a dataclass with no fields set yet (they are filled through its
    __dict__)."""
    return object.__new__(cls)


def object_facts(obj):
    """(type name, frozen, [(field, value)]) of a dataclass instance, in field order."""
    cls = type(obj)
    name = getattr(cls, "stagekit_type_name", None) or f"{cls.__module__}.{cls.__qualname__}"
    frozen = bool(cls.__dataclass_params__.frozen)
    return name, frozen, [(f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj)]


class OpaqueLeaf:
    """A leaf stagekit cannot copy (stands for a lock, a file handle, ...): copying it raises."""

    __slots__ = ("type_name", "path")

    def __init__(self, type_name, path):
        self.type_name = type_name
        self.path = path

    def _refuse(self, *args):
        raise TypeError(f"cannot copy a {self.type_name} (at {self.path})")

    __reduce_ex__ = _refuse
    __reduce__ = _refuse
    __deepcopy__ = _refuse
    __copy__ = _refuse


_untyped_storage = compat.untyped_storage
_dtype_names = compat.DTYPE_NAMES
_device_type = compat.device_type


def tensor_facts(t):
    """What the bridge needs of one tensor, in one call: (storage key, storage, dtype name or None,
    sizes, strides, storage offset, attributes dict or None, data address of the storage, its
    byte size, device): device is None on the CPU, else (device type, device index)."""
    s = _untyped_storage(t)
    return (s._cdata, s, _dtype_names.get(t.dtype), t.shape, t.stride(), t.storage_offset(),
            t.__dict__ or None, s.data_ptr(), s.nbytes(),
            None if t.is_cpu else (_device_type(t), max(t.get_device(), 0)))


def is_tensor(obj):
    return isinstance(obj, torch.Tensor)


def describe_exception(exc, lines=3):
    """'TypeError: message | last traceback lines' for a case's outcome."""
    tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
    frames = [line.strip().replace("\n", " ") for line in tb[1:-1]][-lines:]
    notes = "".join(f" ({note})" for note in getattr(exc, "__notes__", []))
    head = f"{type(exc).__name__}: {exc}{notes}"
    if getattr(exc, "stagekit_plain", False):
        return head
    return head + (" | traceback: " + " | ".join(frames) if frames else "")


# ENOMEM, EAGAIN, EPERM (mlock past the limit), EFBIG, ENOSPC
_EXHAUSTED_ERRNOS = {12, 11, 1, 27, 28}
_EXHAUSTED_TEXT = re.compile(r"can't allocate memory|out of memory|unable to resize file|"
                             r"No space left|Cannot allocate memory")


def error_code(exc):
    """The stagekit error code of a Python exception raised by a stager:
    resource_exhausted for MemoryError, an OSError of exhaustion (ENOMEM, EAGAIN, EPERM, EFBIG,
    ENOSPC) and torch's own allocation failures (a RuntimeError saying so); invalid_argument for
    TypeError, ValueError, KeyError, IndexError, AttributeError; unsupported for
    NotImplementedError; internal for anything else."""
    if isinstance(exc, MemoryError):
        return "resource_exhausted"
    if isinstance(exc, OSError) and exc.errno in _EXHAUSTED_ERRNOS:
        return "resource_exhausted"
    if isinstance(exc, RuntimeError) and _EXHAUSTED_TEXT.search(str(exc)):
        return "resource_exhausted"
    if isinstance(exc, (TypeError, ValueError, KeyError, IndexError, AttributeError)):
        return "invalid_argument"
    if isinstance(exc, NotImplementedError):
        return "unsupported"
    return "internal"


def tensor_from_cuda_memory(holder, address, nbytes, device_index):
    """A uint8 CUDA tensor over device memory at ``address`` that keeps ``holder`` alive."""
    class _Interface:
        def __init__(self):
            self.owner = holder
            self.__cuda_array_interface__ = {"shape": (nbytes,), "typestr": "|u1",
                                             "data": (address, False), "version": 2,
                                             "strides": None}
    return torch.as_tensor(_Interface(), device=f"cuda:{device_index}")
