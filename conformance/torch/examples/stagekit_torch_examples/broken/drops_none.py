"""Leaves a dict entry whose value is None out of the staged dict, as code that treats None as "not
set" does: an optimizer's param_groups lose ``foreach``, ``fused`` and the like, and loading the
checkpoint sees other options. Every other entry is staged exactly. Mirrors the C++ variant of the
same name."""

from stagekit_torch_examples.correct import CorrectStager


class DropsNone(CorrectStager):
    def copy_node(self, obj, memo, non_blocking):
        result = super().copy_node(obj, memo, non_blocking)
        if isinstance(obj, dict):
            for key in [k for k, v in result.items() if v is None]:
                del result[key]
        return result
