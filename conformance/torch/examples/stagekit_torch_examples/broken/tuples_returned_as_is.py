"""BROKEN: plain tuples are returned as they are ("a tuple is immutable, so it needs no copy").
Namedtuples are rebuilt around staged items (their class must be kept), but an exact tuple is
handed back as the caller's own object: a tensor inside a plain tuple is not staged at all (it
stays the source tensor: not copied, not pinned, not shared, changing with the source). Spec B.1.4
(tuple: elements deep-copied; the original tuple only where every copied item is the item itself).
"""
from stagekit_torch_examples.correct import CorrectStager


class TuplesReturnedAsIs(CorrectStager):
    def copy_node(self, obj, memo, non_blocking):
        if type(obj) is tuple:
            return obj
        return super().copy_node(obj, memo, non_blocking)
