"""The Python-side protocol of a stager under test, and how stagekit finds one.

A spec ``torch:PACKAGE.MODULE:FACTORY`` names a factory that Python finds the way it finds any
module (``PYTHONPATH``, the working directory). ``torch`` alone names PyTorch's own
``StateDictStager``. The factory is called as ``factory(pin_memory=..., share_memory=...)`` (and
``pin_memory_min_bytes=...`` when it takes that keyword) and returns an object with
``stage(state_dict, non_blocking=False)`` and, optionally, ``close()`` and ``cache_stats()``
(a dict with ``cached_storages``, ``cached_bytes``, ``pinned_bytes``, ``shared_bytes``).
Every ``stage`` is called with ``torch.cuda.current_stream()`` being the caller's stream, which may
still be writing the sources: the copies must be ordered after what it has queued (spec C.2.3).

Capabilities come from what the factory, the object and torch provide, unless the factory (or the
object's class) declares ``stagekit_capabilities``, a dict of capability name -> bool that wins:
  pin_memory     the factory takes ``pin_memory`` and torch can pin (CUDA is available);
  share_memory   the factory takes ``share_memory``;
  cuda_sources   torch has a usable CUDA device;
  non_blocking   ``stage`` takes ``non_blocking``;
  cache_stats    the object has ``cache_stats()``;
  async_staging  the factory has an async-staging surface (below).

The asynchronous staging surface of checkpointing (PyTorch's ``DefaultStager``,
``BlockingAsyncStager`` and ``async_save``) is reached through ``stagekit_async_staging``, an
attribute of the factory holding an object with:
  default_stager(use_pinned_memory, use_shared_memory, use_async_staging, use_non_blocking_copy)
      a stager with ``stage(state_dict)`` (a ``concurrent.futures.Future`` of the staged dict in
      async mode, the dict itself otherwise), ``synchronize_staging()``, ``close()`` and
      ``should_synchronize_after_execute``; a construction error is raised here;
  blocking_async_stager(cache_staged_state_dict, type_check)
      the same protocol, staging synchronously;
  async_save(state_dict, checkpoint_dir, stager)
      saves into ``checkpoint_dir`` staging with ``stager`` (one of the above, or None for one of
      its own that it closes) and returns (staging future, upload future); the upload's result
      describes what was written (anything with a non-empty ``str()``);
  load_checkpoint(checkpoint_dir)
      the state dict ``async_save`` wrote there.
``torch`` alone uses PyTorch's own (torch.distributed.checkpoint.staging) where torch has it.
"""

import importlib
import inspect

import torch

from . import compat

CAPABILITIES = ("pin_memory", "share_memory", "cuda_sources", "non_blocking", "cache_stats",
                "dtensor", "sharded_tensor", "replication", "state_dict_utilities", "async_staging")


class SpecError(ValueError):
    """A spec that names no usable factory; the message says what is wrong (on one line)."""

    stagekit_plain = True


class Unavailable(NotImplementedError):
    """What the spec names does not exist in this environment (PyTorch's own stager in an older
    torch): every case is not_supported, with this one-line reason."""

    stagekit_plain = True


def load_factory(target):
    """The factory named by ``PACKAGE.MODULE:FACTORY`` ('' for PyTorch's own), and a display
    name."""
    if not target:
        factory, reason = compat.pytorch_state_dict_stager()
        if factory is None:
            raise Unavailable(reason)
        return factory, "pytorch-StateDictStager"
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise SpecError(f"'torch:{target}' is not of the form torch:PACKAGE.MODULE:FACTORY")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # noqa: B902 - any import failure is the spec's outcome
        raise SpecError(f"module '{module_name}' does not import: "
                        f"{type(e).__name__}: {e}") from None
    factory = module
    for part in attr.split("."):
        if not hasattr(factory, part):
            raise SpecError(f"module '{module_name}' has no '{attr}'")
        factory = getattr(factory, part)
    if not callable(factory):
        raise SpecError(f"'{module_name}:{attr}' is a {type(factory).__name__}, "
                        "not a callable factory")
    return factory, f"{module_name}:{attr}"


def async_staging(factory):
    """The async-staging surface of the stagers ``factory`` makes (see the module's docstring), or
    None where it has none."""
    surface = getattr(factory, "stagekit_async_staging", None)
    if surface is None and factory is compat.pytorch_state_dict_stager()[0]:
        surface = compat.pytorch_async_staging()[0]
    return surface


def _accepts(fn, name):
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return True  # a builtin without a signature: assume it does
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def make_stager(factory, pin_memory, share_memory, pin_memory_min_bytes):
    """A stager from ``factory``; TypeError when what it returns has no callable ``stage``."""
    kwargs = {"pin_memory": pin_memory, "share_memory": share_memory}
    if _accepts(factory, "pin_memory_min_bytes"):
        kwargs["pin_memory_min_bytes"] = pin_memory_min_bytes
    stager = factory(**kwargs)
    if not callable(getattr(stager, "stage", None)):
        raise TypeError(f"the factory returned a {type(stager).__name__} "
                        "without a callable stage()")
    return stager


def capabilities(factory):
    """The capabilities of the stagers ``factory`` makes (see the module's docstring)."""
    cuda = torch.cuda.is_available()
    declared = getattr(factory, "stagekit_capabilities", None)
    caps = {name: False for name in CAPABILITIES}
    caps["pin_memory"] = cuda and _accepts(factory, "pin_memory")
    caps["share_memory"] = _accepts(factory, "share_memory")
    caps["cuda_sources"] = cuda
    probe = factory
    if not (inspect.isclass(factory) and callable(getattr(factory, "stage", None))):
        # a function (or a class whose stage() is set per instance): look at what it makes
        probe = make_stager(factory, False, False, 5)
        if callable(getattr(probe, "close", None)):
            probe.close()
    caps["non_blocking"] = _accepts(probe.stage, "non_blocking")
    caps["cache_stats"] = callable(getattr(probe, "cache_stats", None))
    caps["async_staging"] = async_staging(factory) is not None
    if isinstance(declared, dict):
        for name, value in declared.items():
            if name not in caps:
                raise ValueError(f"stagekit_capabilities names an unknown capability '{name}' "
                                 f"(known: {', '.join(CAPABILITIES)})")
            caps[name] = bool(value)
    return caps


def describe(factory, display_name):
    """(name, version) of the implementation for results files."""
    module = inspect.getmodule(factory)
    version = getattr(module, "__version__", None) if module is not None else None
    name = getattr(factory, "stagekit_name", display_name)
    return name, f"{version or '-'} on torch {torch.__version__}"
