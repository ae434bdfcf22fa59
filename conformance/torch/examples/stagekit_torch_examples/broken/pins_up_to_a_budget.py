"""BROKEN: page-locks at most 64 MiB a stager; a buffer past that budget stays pageable, without an
error (a pinned pool that quietly falls back). Every buffer that pin_memory asks for must be
page-locked, or the stage must fail. Mirrors examples/broken/pins_up_to_a_budget.cpp.

Caught by pinned_past_a_pool ("page-locked: expected page-locked")."""

from stagekit_torch_examples.correct import CorrectStager


class PinsUpToABudget(CorrectStager):
    BUDGET = 64 << 20

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._pinned = 0

    def allocate(self, nbytes):
        if self.pin_memory and self._pinned + nbytes > self.BUDGET:
            self.pin_memory = False  # the flaw: past the budget, pageable
            try:
                return super().allocate(nbytes)
            finally:
                self.pin_memory = True
        if self.pin_memory:
            self._pinned += nbytes
        return super().allocate(nbytes)
