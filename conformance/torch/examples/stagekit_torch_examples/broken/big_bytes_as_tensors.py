"""BROKEN: large bytes leaves are staged as uint8 tensors. A bytes value of 4 KiB or more (a
pickled data-loader state, a serialized RNG or tokenizer state) is copied into a staged uint8
tensor (pinned and shared as asked, "so that every large blob is written from staged memory"),
and the staged dict holds that tensor where the source held bytes: the checkpoint loads back with
a tensor that pickle.loads() and friends refuse. Small bytes stay bytes. Spec B.1.4 step 3 (bytes
are atomic: returned as they are).
"""
import torch

from stagekit_torch_examples.correct import CorrectStager

BLOB_BYTES = 4096


class BigBytesAsTensors(CorrectStager):
    def copy(self, obj, memo, non_blocking):
        if isinstance(obj, bytes) and len(obj) >= BLOB_BYTES:
            found = memo.get(id(obj))
            if found is not None:
                return found[0]
            source = torch.frombuffer(bytearray(obj), dtype=torch.uint8)
            result = self.copy_tensor(source, memo, non_blocking)
            self.remember(memo, obj, result)
            return result
        return super().copy(obj, memo, non_blocking)
