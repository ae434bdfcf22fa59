"""BROKEN: a closed DefaultStager keeps its last result. close() waits for the stages, refuses
later ones and closes the stager inside, but the future of the last stage stays referenced, and
with it the staged dict and its pinned or shared buffers, for as long as the DefaultStager lives.
PyTorch's DefaultStager does this (it remembers the last staging future, spec B.3.3).

Caught by default_stager_close_releases ("shared memory released", "page-locked memory
released") wherever the buffers are pinned or shared."""

from stagekit_torch_examples.staging import AsyncStager, DefaultStager, Staging


class DefaultStagerKeepingItsLastResult(DefaultStager):
    def forget_last_result(self):
        pass


class KeepsLastResult(AsyncStager):
    stagekit_async_staging = Staging(default_stager=DefaultStagerKeepingItsLastResult)
