"""The Python halves of the conversion between stagekit values and torch objects.

The C++ bridge walks the trees; what is easier said in Python lives here: one dataclass per stagekit
object type, one namedtuple or __slots__ class per type of those, the dict subclasses by their
class path, the stand-in for a leaf that cannot be copied, and the facts of one tensor.
"""

import collections
import dataclasses
import importlib
import re
import sys
import traceback
import types

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


_made_modules = {}


def _module_for(module):
    """The module made here for a class path whose module cannot be imported (a case's type names),
    made with its parents and put into sys.modules; None when a real module has that name."""
    made = _made_modules.get(module)
    if made is not None:
        return made
    try:
        importlib.import_module(module)
        return None
    except ImportError:
        pass
    parent, _, leaf = module.rpartition(".")
    made = types.ModuleType(module)
    sys.modules[module] = made
    _made_modules[module] = made
    if parent:
        above = _module_for(parent)
        if above is not None:
            setattr(above, leaf, made)
    return made


def _named_class(type_name, make):
    module, _, name = type_name.rpartition(".")
    cls = make(name or type_name)
    cls.__qualname__ = name or type_name
    if module:
        cls.__module__ = module
        # Importable at its path, as pickle (torch.save) finds a class, unless a real module has it.
        home = _module_for(module)
        if home is not None:
            setattr(home, cls.__qualname__, cls)
    cls.stagekit_type_name = type_name
    return cls


_namedtuples = {}
_slots_classes = {}


def namedtuple_type(type_name, field_names):
    """One namedtuple class per (type name, fields), made once per process."""
    key = (type_name, tuple(field_names))
    cls = _namedtuples.get(key)
    if cls is None:
        cls = _named_class(type_name, lambda name: collections.namedtuple(name, list(field_names)))
        _namedtuples[key] = cls
    return cls


def slots_type(type_name, slot_names):
    """One plain class with these __slots__ per (type name, slots), made once per process."""
    key = (type_name, tuple(slot_names))
    cls = _slots_classes.get(key)
    if cls is None:
        cls = _named_class(type_name, lambda name: type(name, (), {"__slots__": tuple(slot_names)}))
        _slots_classes[key] = cls
    return cls


def _class_at(path, what):
    """The class at class path ``path`` ("collections.OrderedDict", "builtins.list")."""
    module, _, qualname = path.rpartition(".")
    try:
        cls = importlib.import_module(module or "builtins")
        for part in qualname.split("."):
            cls = getattr(cls, part)
    except (ImportError, AttributeError) as exc:
        raise TypeError(f"the {what} {path} cannot be imported: {exc}") from None
    return cls


def new_dict(type_name, default_factory=""):
    """An empty instance of the dict subclass at class path ``type_name``
    ("collections.OrderedDict"): a class made by this module, or one imported by its path; a
    defaultdict gets the class at ``default_factory`` as its factory."""
    cls = _class_at(type_name, "dict subclass")
    if not (isinstance(cls, type) and issubclass(cls, dict)):
        raise TypeError(f"{type_name} is not a dict subclass")
    if default_factory:
        if not issubclass(cls, collections.defaultdict):
            raise TypeError(f"{type_name} is not a defaultdict, so it takes no default factory")
        return cls(_class_at(default_factory, "default factory"))
    return cls()


def default_factory_path(d):
    """The class path of a defaultdict's default_factory ("builtins.list"), or "" without one."""
    factory = getattr(d, "default_factory", None)
    if factory is None:
        return ""
    module, name = getattr(factory, "__module__", None), getattr(factory, "__qualname__", None)
    if not module or not name or "<" in name:
        raise TypeError(f"the default_factory of this {type(d).__name__} ({factory!r}) has no "
                        "class path to carry it by")
    return f"{module}.{name}"


def type_path(obj):
    """The class path of an object's type (as new_dict and the type names take it)."""
    cls = type(obj)
    return getattr(cls, "stagekit_type_name", None) or f"{cls.__module__}.{cls.__qualname__}"


def namedtuple_facts(obj):
    """(type name, field names) of a namedtuple, or None for any other tuple subclass."""
    fields = getattr(type(obj), "_fields", None)
    if not isinstance(fields, tuple) or len(fields) != len(obj):
        return None
    return type_path(obj), list(fields)


def slots_facts(obj):
    """(type name, [(slot, value)]) of an object whose class has __slots__ and no __dict__, or
    None. Slots never assigned are left out."""
    cls = type(obj)
    if hasattr(obj, "__dict__") or not any("__slots__" in vars(k) for k in cls.__mro__):
        return None
    names = []
    for k in reversed(cls.__mro__):
        slots = vars(k).get("__slots__", ())
        names.extend([slots] if isinstance(slots, str) else slots)
    missing = object()
    values = [(n, getattr(obj, n, missing)) for n in names if n not in ("__weakref__", "__dict__")]
    return type_path(obj), [(n, v) for n, v in values if v is not missing]


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


_Parameter = torch.nn.Parameter


def tensor_facts(t):
    """What the bridge needs of one tensor, in one call: (storage key, storage, dtype name or None,
    sizes, strides, storage offset, attributes dict or None, data address of the storage, its
    byte size, device, kind): device is None on the CPU, else (device type, device index); kind is
    0 for a plain tensor, 1 for one that requires grad, 2 for a parameter, 3 for a parameter that
    requires grad."""
    s = _untyped_storage(t)
    return (s._cdata, s, _dtype_names.get(t.dtype), t.shape, t.stride(), t.storage_offset(),
            t.__dict__ or None, s.data_ptr(), s.nbytes(),
            None if t.is_cpu else (_device_type(t), max(t.get_device(), 0)),
            (2 if isinstance(t, _Parameter) else 0) + (1 if t.requires_grad else 0))


def as_parameter(t, requires_grad):
    """nn.Parameter over the same storage and layout as ``t``."""
    return _Parameter(t, requires_grad=bool(requires_grad))


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
    NotImplementedError; io for any other OSError (a file or directory that cannot be read or
    written); internal for anything else."""
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
    if isinstance(exc, OSError):
        return "io"
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
