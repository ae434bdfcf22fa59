// broadcast_state_dict keeps storage sharing: the expected partition of the entries into storages
// and every entry's layout are taken from rank 0's source dict (rebuilt identically on each rank
// from seeds), and the results are checked against them by four independent properties: storage
// identity (is_alias_of), layout (sizes, strides, storage offset), memory (a write through one view
// is read through the others at the address the layout predicts) and values.
#include "broadcast_state_dict_checks.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "communicator_checks.h"
#include "stagekit/core/dtensor.h"
#include "stagekit/core/error.h"
#include "stagekit/dist/state_dict_utils.h"

namespace stagekit::dist::testing {
namespace {

using Clock = std::chrono::steady_clock;

// Rank 0's dict: one float32 storage viewed six ways (one of them inside a list, one a 0-dim
// element), a float64 storage used twice, a stride-0 expansion and a full tensor for a DTensor.
Value source_dict() {
  Tensor base = Tensor::arange(24, DType::float32).view({4, 6});
  base.set_attr("requires_grad", Value(true));
  const Tensor other = Tensor::random({5}, DType::float64, 17);
  return Value::dict({{"base", Value(base)},
                      {"base_t", Value(base.transpose(0, 1))},
                      {"rows", Value(base.narrow(0, 1, 2))},
                      {"stepped", Value(base.slice(1, 1, 6, 2))},
                      {"last", Value(base.select(0, 3).select(0, 5))},
                      {"nested", Value::list({Value(base.narrow(1, 2, 2)), Value(other)})},
                      {"other", Value(other)},
                      {"other_tail", Value(other.narrow(0, 2, 3))},
                      {"expanded", Value(Tensor::arange(3, DType::int32).view({1, 3}).expand({4, 3}))},
                      {"dt", Value(Tensor::random({5, 2}, DType::float32, 18))}});
}

// Every rank's local dict names every key (placeholders of other shapes), "dt" as a DTensor.
Value local_dict(const Communicator& comm) {
  auto d = std::make_shared<Dict>();
  for (const char* key : {"base", "base_t", "rows", "stepped", "last", "nested", "other", "other_tail", "expanded"}) {
    d->set(std::string(key), Value(Tensor::zeros({1}, DType::float32)));
  }
  d->set(std::string("dt"), Value(DTensor::distribute(Tensor::zeros({5, 2}, DType::float32),
                                                      DeviceMesh::one_d(DeviceType::cpu, comm.size()),
                                                      {Placement::shard(0)}, comm.rank())));
  return Value(d);
}

struct Leaf {
  std::string name;
  Tensor tensor;
};

// The tensors of the entries compared: top-level tensors and the list items of "nested".
std::vector<Leaf> leaves(const Value& dict) {
  std::vector<Leaf> out;
  for (const auto& [key, value] : dict.as_dict().entries()) {
    const std::string name = std::get<std::string>(key);
    if (name == "dt") continue;
    if (value.is_tensor()) {
      out.push_back({name, value.as_tensor()});
    } else if (value.kind() == Value::Kind::list) {
      for (std::size_t i = 0; i < value.as_list().items.size(); ++i) {
        out.push_back({name + "." + std::to_string(i), value.as_list().items[i].as_tensor()});
      }
    }
  }
  return out;
}

std::vector<std::int64_t> vec(std::span<const std::int64_t> s) { return {s.begin(), s.end()}; }

}  // namespace

void check_broadcast_keeps_sharing(Communicator& comm) {
  const std::string where = "rank " + std::to_string(comm.rank());
  const Value source = source_dict();  // rank 0 sends it; the others compare against their own copy
  Value local = local_dict(comm);
  broadcast_state_dict(comm.rank() == 0 ? source : Value::dict({}), local, comm);

  const std::vector<Leaf> expected = leaves(source);
  const std::vector<Leaf> got = leaves(local);
  ASSERT_EQ(got.size(), expected.size()) << where;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const std::string what = where + ", " + got[i].name;
    ASSERT_EQ(got[i].name, expected[i].name) << what;
    const Tensor& g = got[i].tensor;
    const Tensor& e = expected[i].tensor;
    // Layout and values, on their own.
    EXPECT_TRUE(g.device().is_cpu()) << what;
    EXPECT_EQ(g.dtype(), e.dtype()) << what;
    EXPECT_EQ(vec(g.sizes()), vec(e.sizes())) << what;
    EXPECT_EQ(vec(g.strides()), vec(e.strides())) << what;
    EXPECT_EQ(g.storage_offset(), e.storage_offset()) << what;
    EXPECT_TRUE(Tensor::equal(g, e)) << what << ": values differ";
    // The whole storage crossed. Rank 0 keeps its own storages (as upstream does); on the other
    // ranks the result is new memory, not the rank's own copy of the source.
    EXPECT_EQ(g.storage().nbytes(), e.storage().nbytes()) << what;
    EXPECT_EQ(g.storage().is_alias_of(e.storage()), comm.rank() == 0)
        << what << (comm.rank() == 0 ? ": rank 0 copied its own storage" : ": aliases the rank's own source");
    // Identity: the same storage exactly where rank 0 had the same storage.
    for (std::size_t j = 0; j < i; ++j) {
      EXPECT_EQ(g.storage().is_alias_of(got[j].tensor.storage()), e.storage().is_alias_of(expected[j].tensor.storage()))
          << where << ": sharing of " << got[i].name << " and " << got[j].name << " differs from rank 0";
    }
  }
  EXPECT_TRUE(local["base"].as_tensor().attrs().empty()) << where << ": a full tensor arrives without attributes";

  // Memory: a write through "base" is read through every other view of its storage, at the address
  // its offset and strides give.
  const Tensor base = local["base"].as_tensor();
  const float marker = -1234.5F;
  auto* first = static_cast<std::byte*>(base.storage().data());
  std::memcpy(first + 23 * sizeof(float), &marker, sizeof marker);  // element [3][5]
  EXPECT_EQ(local["last"].as_tensor().item(), marker) << where << ": the 0-dim view does not see the write";
  EXPECT_EQ(local["base_t"].as_tensor().item({5, 3}), marker) << where << ": the transpose does not see the write";
  EXPECT_EQ(static_cast<std::byte*>(local["rows"].as_tensor().data_ptr()), first + 6 * sizeof(float)) << where;
  EXPECT_EQ(static_cast<std::byte*>(local["stepped"].as_tensor().data_ptr()), first + 1 * sizeof(float)) << where;

  // The DTensor got its block of the full tensor.
  const auto& dt = *local["dt"].as_dtensor_node();
  const LocalShard block = dt.local_shard();
  const Tensor full = source["dt"].as_tensor();
  EXPECT_TRUE(Tensor::equal(dt.local(), full.narrow(0, std::min(block.offset[0], full.sizes()[0]), block.shape[0])))
      << where << ": dt";
}

void check_broadcast_pack_errors(Communicator& comm) {
  const std::string where = "rank " + std::to_string(comm.rank());
  const auto limit = comm.timeout() / 2;
  {
    Value local = local_dict(comm);
    const Value full = Value::dict({{"model", Value::dict({{"lock", Value::opaque("threading.Lock")}})}});
    const auto start = Clock::now();
    if (comm.rank() == 0) {
      try {
        broadcast_state_dict(full, local, comm);
        ADD_FAILURE() << where << ": an opaque leaf was broadcast";
      } catch (const Unsupported& e) {
        EXPECT_EQ(e.path(), "model.lock") << where;
      }
    } else {
      expect_error<CommunicationError>([&] { broadcast_state_dict(Value::dict({}), local, comm); },
                                       {"rank 0 sent no state dict", "threading.Lock", "model.lock"}, where);
    }
    EXPECT_LT(Clock::now() - start, limit) << where << ": the error waited for the timeout";
  }
  {
    Value local = local_dict(comm);
    if (comm.rank() == 0) {
      expect_error<InvalidArgument>([&] { broadcast_state_dict(Value::list({}), local, comm); },
                                    {"rank 0 needs a full dict"}, where);
    } else {
      expect_error<CommunicationError>([&] { broadcast_state_dict(Value(), local, comm); },
                                       {"rank 0 sent no state dict", "rank 0 needs a full dict"}, where);
    }
  }
  // Still in step: a good broadcast follows.
  Value local = Value::dict({{"step", Value(0)}});
  broadcast_state_dict(comm.rank() == 0 ? Value::dict({{"step", Value(9)}}) : Value(), local, comm);
  EXPECT_EQ(local["step"].as_int(), 9) << where;
}

}  // namespace stagekit::dist::testing
