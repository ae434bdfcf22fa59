"""BROKEN: storage identity taken as the storage's address. Buffers are found by the source
storage's ``data_ptr()``, in the memo of one stage and in the cache across stages, and a cached
buffer of the right size is taken as the one for that storage. Every storage with bytes of its own
is staged exactly; but zero-byte storages, which all have address 0, become one staged storage,
and a new storage that the allocator places where a dead one was takes over the dead one's buffer
(an address cannot tell that the storage that had it died). Mirrors
examples/broken/keyed_by_address.cpp."""

from stagekit_torch_examples.correct import CorrectStager


class AddressCache:
    """source storage -> staged storage, keyed by the source's address only."""

    def __init__(self):
        self._entries = {}

    def get(self, storage):
        staged = self._entries.get(storage.data_ptr())
        return staged if staged is not None and staged.nbytes() == storage.nbytes() else None

    def put(self, storage, staged):
        self._entries[storage.data_ptr()] = staged  # the flaw: whoever lives there later gets it

    def discard(self, storage):
        self._entries.pop(storage.data_ptr(), None)

    def clear(self):
        self._entries.clear()

    def __len__(self):
        return len(self._entries)


class KeyedByAddress(CorrectStager):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._cache = AddressCache()

    @staticmethod
    def storage_memo_key(tensor, source):
        return ("storage", source.data_ptr())  # the flaw: the address alone
