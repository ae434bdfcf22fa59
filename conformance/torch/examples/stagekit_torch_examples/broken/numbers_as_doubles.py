"""Holds every number leaf as a float and writes it back through JSON, as a stager keeping its
non-tensor skeleton in JSON does: ints beyond 2^53 (64-bit RNG seeds) lose their low bits, and a NaN
loses its payload and sign. Small ints and ordinary floats come back equal. (An int rounded up to
2^63 is held at the largest int64, as the C++ variant of the same name does.)"""

import json

from stagekit_torch_examples.correct import CorrectStager


class NumbersAsDoubles(CorrectStager):
    def copy(self, obj, memo, non_blocking):
        if isinstance(obj, (int, float)) and not isinstance(obj, bool):
            as_float = json.loads(json.dumps(float(obj)))
            if isinstance(obj, float):
                return as_float
            return min(int(as_float), 2**63 - 1)
        return super().copy(obj, memo, non_blocking)
