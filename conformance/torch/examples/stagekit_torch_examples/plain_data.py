"""What the broken examples call plain data: a container whose whole subtree holds only scalars."""

import dataclasses


_SCALARS = (type(None), bool, int, float, complex, str, bytes)


def plain_data(obj, seen=None):
    """Whether ``obj`` is a container (dict, list, tuple, set, dataclass, __slots__ object) whose
    whole subtree holds only plain scalars and such containers: no tensor, nothing else."""
    if isinstance(obj, _SCALARS):
        return True
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return True
    seen.add(id(obj))
    if isinstance(obj, dict):
        return all(plain_data(k, seen) and plain_data(v, seen) for k, v in obj.items())
    if isinstance(obj, (list, tuple, set, frozenset)):
        return all(plain_data(x, seen) for x in obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return all(plain_data(getattr(obj, f.name), seen) for f in dataclasses.fields(obj))
    names = [n for k in type(obj).__mro__ for n in vars(k).get("__slots__", ())]
    if names and not hasattr(obj, "__dict__") and not hasattr(obj, "__deepcopy__"):
        return all(plain_data(getattr(obj, n), seen) for n in names if hasattr(obj, n))
    return False
