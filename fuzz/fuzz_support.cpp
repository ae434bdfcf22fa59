// fuzz_support.cpp — the allocation bound (a sanitizer malloc hook) and the decoded-tree check
// shared by the fuzz targets.
#include "fuzz_support.h"

#include <sanitizer/allocator_interface.h>
#include <sanitizer/common_interface_defs.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <unordered_set>
#include <vector>

#include "stagekit/core/dtensor.h"
#include "stagekit/core/sharded_tensor.h"
#include "stagekit/core/tensor.h"

namespace stagekit::fuzz {
namespace {

// The largest single allocation allowed right now; 0 outside a bounded decode.
std::atomic<std::size_t> g_allocation_limit{0};
std::atomic<bool> g_reporting{false};
const char* g_target = "stagekit fuzz target";
const char* g_decoder = "the decoder";
// Where touch() puts the bytes it reads, so that the reads are not optimised away.
volatile unsigned char g_sink = 0;

void write_stderr(const char* text, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(2, text, n);
    if (w <= 0) return;
    text += w;
    n -= static_cast<std::size_t>(w);
  }
}

void malloc_hook(const volatile void*, std::size_t size) {
  const std::size_t limit = g_allocation_limit.load(std::memory_order_relaxed);
  if (limit == 0 || size <= limit || g_reporting.exchange(true)) return;
  char message[320];
  const int n = std::snprintf(message, sizeof message,
                              "==%s== ERROR: %s allocated %zu bytes in one allocation; the limit for this "
                              "input is %zu bytes (%zu x input + %zu)\n",
                              g_target, g_decoder, size, limit, kAllocationFactor, kAllocationSlack);
  write_stderr(message, n > 0 ? static_cast<std::size_t>(n) : 0);
  __sanitizer_print_stack_trace();
  std::abort();  // libFuzzer reports a deadly signal and saves the input as crash-<sha1>
}

void free_hook(const volatile void*) {}

// Checks that a tensor addresses only bytes inside its CPU storage; with `read_bytes` reads the
// first and the last of them, so that ASan reports memory shorter than the storage says.
void touch(const Tensor& t, bool read_bytes) {
  if (!t.defined() || t.numel() == 0) return;
  const Storage& storage = t.storage();
  if (!storage.defined()) fail("a decoded tensor with elements has no storage");
  if (!storage.device().is_cpu()) fail("a decoded tensor is not on the CPU");
  const std::size_t offset_bytes = static_cast<std::size_t>(t.storage_offset()) * t.element_size();
  const std::size_t addressed = t.addressed_bytes();
  if (offset_bytes > storage.nbytes() || addressed > storage.nbytes() - offset_bytes) {
    fail("a decoded tensor addresses bytes past the end of its storage");
  }
  if (!read_bytes) return;
  const auto* base = static_cast<const volatile unsigned char*>(storage.data()) + offset_bytes;
  g_sink = static_cast<unsigned char>(base[0] ^ base[addressed - 1]);
}

}  // namespace

void install_allocation_hook(const char* target, const char* decoder) {
  g_target = target;
  g_decoder = decoder;
  __sanitizer_install_malloc_and_free_hooks(malloc_hook, free_hook);
}

AllocationBound::AllocationBound(std::size_t input_bytes) {
  g_allocation_limit.store(kAllocationFactor * input_bytes + kAllocationSlack);
}
AllocationBound::~AllocationBound() { release(); }
void AllocationBound::release() noexcept { g_allocation_limit.store(0); }

void fail(const char* what) {
  g_allocation_limit.store(0);
  std::fprintf(stderr, "==%s== ERROR: %s\n", g_target, what);
  __sanitizer_print_stack_trace();
  std::abort();
}

void check_tree(const Value& root, bool read_bytes) {
  std::vector<Value> pending{root};
  std::unordered_set<const void*> seen;
  while (!pending.empty()) {
    const Value v = std::move(pending.back());
    pending.pop_back();
    if (const void* id = v.identity(); id != nullptr && !seen.insert(id).second) continue;
    switch (v.kind()) {
      case Value::Kind::tensor: {
        const Tensor& t = v.as_tensor();
        touch(t, read_bytes);
        for (const auto& [name, attr] : t.attrs()) pending.push_back(attr);
        break;
      }
      case Value::Kind::list:
        for (const Value& item : v.as_list().items) pending.push_back(item);
        break;
      case Value::Kind::tuple:
        for (const Value& item : v.as_tuple().items()) pending.push_back(item);
        break;
      case Value::Kind::dict:
        for (const auto& [key, item] : v.as_dict().entries()) pending.push_back(item);
        break;
      case Value::Kind::object:
        for (const auto& [name, field] : v.as_object().fields()) pending.push_back(field);
        break;
      case Value::Kind::dtensor: touch(v.as_dtensor_node()->local(), read_bytes); break;
      case Value::Kind::sharded_tensor:
        for (const auto& shard : v.as_sharded_tensor_node()->local_shards()) touch(shard.tensor, read_bytes);
        break;
      case Value::Kind::opaque: fail("a decoded tree holds an opaque leaf, which the format cannot carry");
      default: break;
    }
  }
}

}  // namespace stagekit::fuzz
