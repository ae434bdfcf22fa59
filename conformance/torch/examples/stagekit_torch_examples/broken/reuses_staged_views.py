"""BROKEN: views rebuilt at every stage. The staged tensor of each key is kept and handed out again
by the next stage() of the same storage under the same key, with the new values copied in but the
view of the first stage: a tensor re-viewed between checkpoints (transposed, sliced otherwise)
comes back with the old sizes, strides and offset. Mirrors examples/broken/reuses_staged_views.cpp.

Caught by views_change_between_stages ("strides", "sizes", "storage offset")."""

from stagekit_torch import compat
from stagekit_torch_examples.correct import CorrectStager


class ReusesStagedViews(CorrectStager):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._views = {}  # path -> the staged tensor of an earlier, successful stage
        self._pending = {}

    def stage(self, state_dict, non_blocking=False):
        self._pending = {}
        try:
            result = super().stage(state_dict, non_blocking)
            self._views.update(self._pending)  # kept once the stage succeeded
        finally:
            self._pending = {}
        return result

    def close(self):
        self._views.clear()
        super().close()

    def copy_tensor(self, tensor, memo, non_blocking):
        result = super().copy_tensor(tensor, memo, non_blocking)
        earlier = self._views.get(self.path())
        if earlier is not None and (compat.untyped_storage(earlier).data_ptr()
                                    == compat.untyped_storage(result).data_ptr()):
            return earlier  # the same staged buffer: the view of the earlier stage, stale
        self._pending[self.path()] = result
        return result
