"""BROKEN: a DefaultStager that closes the stager inside after every stage, as PyTorch's did
after PR #170431 (spec B.3.3, C.2.7): the cache goes with each stage, so every stage allocates,
pins and shares its buffers again, and earlier results no longer alias the buffers later stages
fill.

Caught by default_stager ("buffer reuse", "aliasing of earlier results")."""

from stagekit_torch_examples.staging import AsyncStager, DefaultStager, Staging


class DefaultStagerDroppingItsCache(DefaultStager):
    def _stage(self, state_dict, produced=None):
        try:
            return super()._stage(state_dict, produced)
        finally:
            self._stager.close()


class DropsCacheAfterStage(AsyncStager):
    stagekit_async_staging = Staging(default_stager=DefaultStagerDroppingItsCache)
