"""What a caller's state dict is, so that the bridge can tell whether a stager left it as it was.

A stager must not change the state dict it is given: not the bytes of its tensors (the probes
digest those), and not the tree either, which lives only on the Python side of the torch route.
snapshot(tree) lists, in walk order, every node reached with its path: its type and identity, a
dict's keys, a sequence's or a set's length, a scalar's value, and a tensor's storage, layout,
dtype, device, grad flag and attribute names; a node reached again is listed by identity only.
first_change(tree, before) names the first difference between the tree now and that list, or
returns None. shared_node(source, staged) names the first node of a staged tree that is a node of
the caller's (which a stager must not hand back: spec B.1.4).
"""

import dataclasses

import torch

from . import compat, convert

_SCALARS = (type(None), bool, int, float, complex, str, bytes)


def _child(path, part):
    return f"{path}.{part}" if path else str(part)


def _describe(node):
    kind = type(node).__qualname__
    if isinstance(node, torch.Tensor):
        try:  # a wrapper subclass (DTensor, ShardedTensor) has no storage or layout of its own
            layout = (compat.storage_key(compat.untyped_storage(node)), tuple(node.stride()),
                      node.storage_offset())
        except (RuntimeError, NotImplementedError, TypeError, AttributeError):
            layout = (0, (), 0)
        return ("tensor", kind, id(node), layout[0], tuple(node.shape), layout[1], layout[2],
                str(node.dtype), str(node.device), bool(node.requires_grad),
                tuple(sorted(node.__dict__)))
    if isinstance(node, _SCALARS):
        return ("scalar", kind, repr(node))
    if isinstance(node, dict):
        return ("dict", kind, id(node), tuple((type(k).__qualname__, repr(k)) for k in node))
    if isinstance(node, (list, tuple, set, frozenset)):
        return ("sequence", kind, id(node), len(node))
    return ("object", kind, id(node))


def _children(node, path):
    if isinstance(node, torch.Tensor):
        return [(_child(path, name), value) for name, value in node.__dict__.items()]
    if isinstance(node, dict):
        return [(_child(path, key), value) for key, value in node.items()]
    if isinstance(node, (list, tuple)):
        return [(f"{path}[{i}]", value) for i, value in enumerate(node)]
    if isinstance(node, (set, frozenset)):  # in a fixed order: two walks compare item by item
        return [(f"{path}{{{i}}}", value) for i, value in enumerate(sorted(node, key=repr))]
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        return [(_child(path, f.name), getattr(node, f.name)) for f in dataclasses.fields(node)]
    slots = convert.slots_facts(node)
    if slots is not None:
        return [(_child(path, name), value) for name, value in slots[1]]
    return []


def snapshot(tree):
    """[(path, description)] of every node of ``tree`` in walk order (see the module's text)."""
    out, seen, stack = [], set(), [("", tree)]
    while stack:
        path, node = stack.pop()
        if not isinstance(node, _SCALARS) and id(node) in seen:
            out.append((path or "<root>", ("again", id(node))))
            continue
        if not isinstance(node, _SCALARS):
            seen.add(id(node))
        out.append((path or "<root>", _describe(node)))
        stack.extend(reversed(_children(node, path)))
    return out


def _is_atomic(node):
    return isinstance(node, _SCALARS)


def shared_node(source, staged):
    """None when no node of ``staged`` is a node of ``source``, else (path, kind) of the first one
    in walk order. Every container and tensor of a staged tree is new (spec B.1.4); a tuple or
    frozenset of atomic values only may be the source's own (upstream hands such a tuple back:
    spec C.1.8), and so may any scalar, string or bytes."""
    source_ids = {id(node) for _, node in _walk(source)}
    for path, node in _walk(staged):
        if _is_atomic(node) or id(node) not in source_ids:
            continue
        if isinstance(node, (tuple, frozenset)) and all(_is_atomic(item) for item in node):
            continue
        return path or "<root>", type(node).__qualname__
    return None


def _walk(tree):
    """(path, node) of every node of ``tree``, each once, depth first."""
    seen, stack = set(), [("", tree)]
    while stack:
        path, node = stack.pop()
        if not _is_atomic(node):
            if id(node) in seen:
                continue
            seen.add(id(node))
        yield path, node
        stack.extend(reversed(_children(node, path)))


def first_change(tree, before):
    """None when ``tree`` is still what ``before`` (a snapshot) lists, else (path, what changed)."""
    now = snapshot(tree)
    for (path, was), (path_now, is_now) in zip(before, now):
        if path != path_now or was != is_now:
            return path, (f"before the stage: {_text(path, was)}; "
                          f"after it: {_text(path_now, is_now)}")
    if len(before) != len(now):
        shorter, longer = (now, before) if len(now) < len(before) else (before, now)
        path, extra = longer[len(shorter)]
        gone = len(now) < len(before)
        if gone:
            return path, f"{_text(path, extra)} was in the state dict before the stage and is gone"
        return path, f"{_text(path, extra)} was added to the state dict by the stage"
    return None


def _text(path, description):
    kind = description[0]
    if kind == "tensor":
        _, cls, _, _, shape, stride, offset, dtype, device, grad, attrs = description
        return (f"{path} = {cls} {dtype}{list(shape)} strides {list(stride)} offset {offset} on "
                f"{device}{' requiring grad' if grad else ''}"
                f"{' with attributes ' + ', '.join(attrs) if attrs else ''}"
                f" (object {description[2]:#x}, storage {description[3]:#x})")
    if kind == "scalar":
        return f"{path} = {description[2]} ({description[1]})"
    if kind == "dict":
        keys = ", ".join(k for _, k in description[3])
        return f"{path} = {description[1]} with keys [{keys}] (object {description[2]:#x})"
    if kind == "sequence":
        return f"{path} = {description[1]} of {description[3]} item(s) (object {description[2]:#x})"
    if kind == "again":
        return f"{path} = the node met earlier (object {description[1]:#x})"
    return f"{path} = {description[1]} (object {description[2]:#x})"
