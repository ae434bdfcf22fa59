// stagekit/dist/state_dict_utils.h — the distributed state-dict utilities (PyTorch's
// torch/distributed/_state_dict_utils.py, spec B.6), with the corrections of spec C.4 chosen here:
//
//   * every error names the state-dict path (`model.layers.0.weight`);
//   * copy_state_dict checks the companion strictly: key sets, lengths, kinds, dtypes and shapes
//     must match (upstream converts dtypes silently and raises attribute errors for non-tensors);
//     a mismatch is a CompanionMismatch naming the path and what differs;
//   * check_state_dict_similarity has no side effect (upstream copies every tensor into the
//     compared dict) and also compares DTensor local tensors and ShardedTensor shards, and returns
//     false (never throws) when a companion leaf is not a tensor;
//   * tuples stay tuples (upstream returns tuples for namedtuples too; there is no namedtuple here);
//   * gather of a ShardedTensor assembles every local shard at its offsets (upstream handles only the
//     first local shard of a dim-0 chunking);
//   * create_cpu_state_dict zero-fills its buffers (upstream leaves them uninitialised, which makes
//     its "differs before copy" assertion probabilistic);
//   * ranks_only keeps upstream's rule: on an unlisted rank every level is replaced as it is produced
//     (a dict by {}, anything else by None), so a top-level dict comes back as {};
//   * type_check: object and opaque leaves are rejected with "unexpected value type" when true;
//     when false, objects are deep-copied (tensors inside cloned) and opaque leaves shared;
//   * broadcast_state_dict keeps storage sharing (upstream's receivers get one new tensor per key):
//     rank 0's dict crosses once, packed (stagekit/replicate/packed_message.h), each distinct
//     storage whole and once, and fails on every rank, not only on rank 0, when rank 0 cannot pack it.
// Non-tensor leaves (none, bool, int, float, string, bytes) are shared, never copied.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "stagekit/core/error.h"
#include "stagekit/core/host_buffer_pool.h"
#include "stagekit/core/value.h"
#include "stagekit/dist/communicator.h"

namespace stagekit::dist {

// A companion structure that does not match the source (keys, lengths, kinds, dtypes, shapes).
class CompanionMismatch : public InvalidArgument {
 public:
  using InvalidArgument::InvalidArgument;
};

struct GatherOptions {
  bool cpu_offload = false;     // gathered tensors end on the CPU
  std::vector<int> ranks_only;  // when not empty, only these world ranks keep the result
  bool type_check = true;       // reject object and opaque leaves
  // Where full host tensors gathered in place take their memory: a pool the caller keeps across
  // calls reuses pre-faulted buffers (nullptr: fresh allocations).
  HostBufferPool* output_pool = nullptr;
  // Where a ShardedTensor is gathered (upstream's `device`): its full tensor is placed on this
  // device, then moved to the device of the rank's first local shard (the CPU on a rank holding
  // none), as upstream. nullopt: the CPU, the memory of the host communicators, which carry the bytes
  // whatever the device. DTensors ignore it,
  // as upstream (they gather over their mesh). The meta device holds no data and is refused, and a
  // CUDA device without CUDA is Unsupported, each naming the path, on every rank before the
  // collective starts.
  std::optional<Device> device;
};

// DTensors and ShardedTensors to full tensors (collective over `world`, a thread-world or MPI
// communicator: the gather moves host memory, and NCCL is Unsupported; every rank calls it with the
// same structure). Plain tensors pass through (moved to CPU with cpu_offload).
[[nodiscard]] Value gather_state_dict(const Value& state_dict, Communicator& world, const GatherOptions& options = {});

// Every tensor leaf moved to the CPU: CPU tensors are the same objects (aliasing the source),
// DTensors become CPU DTensors. `rank` filters with `ranks_only` (empty: every rank keeps it).
[[nodiscard]] Value offload_state_dict_to_cpu(const Value& state_dict, int rank,
                                              const std::vector<int>& ranks_only = {}, bool type_check = true);

// A CPU state dict shaped like `state_dict` with fresh, zero-filled, contiguous buffers (pinned
// and/or shared as asked); values are not copied. 0-dim tensors become unpinned, unshared scalar
// zeros; empty tensors are never pinned. DTensors and ShardedTensors keep their spec/metadata over
// fresh local buffers; a 0-dim DTensor and a ShardedTensor without local shards are returned as the
// original objects (as upstream). Unknown leaves are deep-copied.
[[nodiscard]] Value create_cpu_state_dict(const Value& state_dict, bool pin_memory = false, bool share_memory = false);

// Copies every tensor leaf of `source` into the matching tensor of `destination` (local tensors of
// DTensors, shards of ShardedTensors). Returns a new structure whose tensor leaves are
// `destination`'s tensors and whose other leaves are `source`'s values; `destination`'s non-tensor
// leaves are not updated. non_blocking: device copies may still run on return (synchronise first).
[[nodiscard]] Value copy_state_dict(const Value& source, const Value& destination, bool non_blocking = false,
                                    bool type_check = true);

// True when `other` has the structure of `state_dict` and every tensor leaf the same dtype and shape.
[[nodiscard]] bool check_state_dict_similarity(const Value& state_dict, const Value& other);

// For each key of `keys` whose value in `local_state_dict` (a dict) is a list/tuple [DTensor, full
// tensor], copies this rank's block of the full tensor into the DTensor's local tensor (in place:
// the DTensor object is kept) and stores the DTensor under the key. A local tensor on the meta
// device holds no data: the key then gets a new DTensor, with the same spec, whose local tensor is a
// contiguous copy of the block on the full tensor's device (upstream's meta path). Plain tensors and
// none are skipped. The full tensor must have the DTensor's global shape and dtype.
void distribute_tensors(Value& local_state_dict, const std::vector<std::string>& keys);

// Every rank holds `full_state_dict`: non-tensors are assigned into `local_state_dict` (added when
// absent); 0-dim tensors as CPU copies; other tensors only for keys present locally: a local DTensor
// is replaced by a new DTensor distributing the full tensor with the local mesh and placements, a
// local tensor by a copy of the full tensor on `device`.
void distribute_state_dict(const Value& full_state_dict, Value& local_state_dict, Device device = Device::cpu());

// Rank 0 of `world` holds `full_state_dict` (a dict; other ranks' argument is ignored). The whole
// dict is sent once, packed: every distinct storage whole and once, then rebuilt on every rank: over
// new host storages, and on rank 0 over rank 0's own host storages (as upstream's rank 0 keeps its
// full tensors; it copies nothing and holds the dict once). Its top-level entries are then applied in rank 0's order:
// non-tensor entries and 0-dim tensors (CPU tensors) are assigned into every rank's
// `local_state_dict` only where the key already exists there; every other tensor is distributed as
// in distribute_state_dict (a local DTensor gets a new DTensor with its mesh and placements, a local
// tensor the full tensor on `device`), again only for keys present locally (upstream fails on
// missing keys with cpu_offload; here they are skipped). cpu_offload: those results end on the CPU.
// strict: local keys that rank 0's dict does not have are removed.
// Sharing: entries that are views of one storage on rank 0 (at the top level or inside non-tensor
// entries) are views of one storage on every rank, with rank 0's sizes, strides and storage
// offsets; on a CUDA `device` each distinct storage is copied to the device once. On rank 0 a host
// result shares its storage with rank 0's `full_state_dict` (new tensor objects: writing through one
// is seen through the other); on every other rank nothing is shared with anything the caller holds. Full tensors arrive
// as plain tensors (no attributes, as upstream's detached copies); inside non-tensor entries tensors keep their
// attributes and a node reached twice on rank 0 is one node on every rank. Collective over `world` (host memory: a
// thread-world or MPI communicator; NCCL is Unsupported). When rank 0 cannot pack its dict (not a dict, an opaque leaf,
// a cycle) it throws that error, naming the path, and every other rank a CommunicationError with the same reason.
void broadcast_state_dict(const Value& full_state_dict, Value& local_state_dict, Communicator& world,
                          bool strict = false, bool cpu_offload = false, Device device = Device::cpu());

struct BroadcastOptions {
  bool strict = false;
  bool cpu_offload = false;
  Device device = Device::cpu();
  // Where the host storages the dict arrives in take their memory: a pool the caller keeps across
  // calls reuses pre-faulted buffers (nullptr: fresh allocations).
  HostBufferPool* output_pool = nullptr;
};
// broadcast_state_dict with its options in one place, and a pool for the arriving storages.
void broadcast_state_dict(const Value& full_state_dict, Value& local_state_dict, Communicator& world,
                          const BroadcastOptions& options);

}  // namespace stagekit::dist
