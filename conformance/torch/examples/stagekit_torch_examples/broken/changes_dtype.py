"""BROKEN: dtypes. bfloat16 tensors are staged as float16 (same bytes, wrong dtype: every value
reads differently). Mirrors examples/broken/changes_dtype.cpp.

Caught by stager.dtype (bfloat16) and by the families whose state dicts hold a bfloat16 tensor:
full_contract, many_tensors, parameters_staged_plain, python_containers ("dtype: bfloat16 vs
float16")."""

import torch

from stagekit_torch_examples.correct import CorrectStager


class ChangesDtype(CorrectStager):
    def copy_tensor(self, tensor, memo, non_blocking):
        result = super().copy_tensor(tensor, memo, non_blocking)
        if result.dtype != torch.bfloat16:
            return result
        changed = result.view(torch.float16)  # the same storage, offset and strides
        changed.__dict__.update(result.__dict__)
        self.remember(memo, tensor, changed)
        return changed
