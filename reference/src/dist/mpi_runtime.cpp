// MPI initialisation and finalisation, large-message datatypes, and request polling with a deadline
// plus the process-wide list of abandoned requests (see mpi_runtime.h).
#include "mpi_runtime.h"

#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include "stagekit/core/error.h"

namespace stagekit::dist::mpi_detail {
namespace {

struct Abandoned {
  MPI_Request request;
  std::shared_ptr<void> buffers;
  bool holds_up_finalize;
};

struct AbandonedList {
  std::mutex mutex;
  std::vector<Abandoned> entries;
};

// Never destroyed: the exit handler below still uses it after static destructors ran.
AbandonedList& abandoned() {
  static auto* list = new AbandonedList;
  return *list;
}

void abandon(MPI_Request request, std::shared_ptr<void> buffers, Operation::Request kind) noexcept {
  if (request == MPI_REQUEST_NULL || is_finalized()) return;
  if (kind == Operation::Request::receive) MPI_Cancel(&request);
  auto& list = abandoned();
  std::lock_guard lock(list.mutex);
  list.entries.push_back({request, std::move(buffers), kind != Operation::Request::send});
}

// The abandoned requests that still hold up MPI_Finalize.
std::size_t abandoned_count() {
  auto& list = abandoned();
  std::lock_guard lock(list.mutex);
  return static_cast<std::size_t>(
      std::count_if(list.entries.begin(), list.entries.end(), [](const Abandoned& a) { return a.holds_up_finalize; }));
}

void finalize_at_exit() {
  if (is_finalized()) return;
  // Operations abandoned at a timeout complete when the late peer arrives; give them a moment.
  const auto deadline = Clock::now() + std::chrono::seconds(2);
  while (Clock::now() < deadline) {
    sweep_abandoned();
    if (abandoned_count() == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (const std::size_t left = abandoned_count(); left != 0) {
    std::fprintf(stderr,
                 "stagekit: not calling MPI_Finalize: %zu MPI operation(s) abandoned after a timeout never completed "
                 "(a peer is gone), and MPI_Finalize could wait for them forever\n",
                 left);
    return;
  }
  MPI_Finalize();
}

}  // namespace

std::string error_text(int rc) {
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  if (MPI_Error_string(rc, text, &length) != MPI_SUCCESS) return fmt::format("MPI error {}", rc);
  return fmt::format("{} (MPI error {})", std::string_view(text, static_cast<std::size_t>(length)), rc);
}

void check(int rc, std::string_view call) {
  if (rc != MPI_SUCCESS) throw CommunicationError(fmt::format("{} failed: {}", call, error_text(rc)));
}

bool is_initialized() noexcept {
  int flag = 0;
  MPI_Initialized(&flag);
  return flag != 0;
}

bool is_finalized() noexcept {
  int flag = 0;
  MPI_Finalized(&flag);
  return flag != 0;
}

void initialize_if_needed() {
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  if (is_finalized()) throw CommunicationError("mpi_world: MPI was already finalised in this process");
  if (is_initialized()) return;
  int provided = 0;
  check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided), "MPI_Init_thread");
  std::atexit(finalize_at_exit);
}

void sweep_abandoned() noexcept {
  if (is_finalized()) return;
  auto& list = abandoned();
  std::lock_guard lock(list.mutex);
  std::erase_if(list.entries, [](Abandoned& a) {
    int flag = 0;
    return MPI_Test(&a.request, &flag, MPI_STATUS_IGNORE) != MPI_SUCCESS || flag != 0;
  });
}

ByteType::ByteType(std::size_t nbytes) {
  if (nbytes <= static_cast<std::size_t>(INT_MAX)) {
    count_ = static_cast<int>(nbytes);
    return;
  }
  constexpr std::size_t kBlock = std::size_t{1} << 30;
  const std::size_t blocks = nbytes / kBlock;
  const std::size_t rest = nbytes % kBlock;
  check_argument(blocks <= static_cast<std::size_t>(INT_MAX), "MPI message too large");
  MPI_Datatype block = MPI_DATATYPE_NULL;
  check(MPI_Type_contiguous(static_cast<int>(kBlock), MPI_BYTE, &block), "MPI_Type_contiguous");
  if (rest == 0) {
    type_ = block;
    count_ = static_cast<int>(blocks);
  } else {
    int lengths[2] = {static_cast<int>(blocks), static_cast<int>(rest)};
    MPI_Aint displacements[2] = {0, static_cast<MPI_Aint>(blocks * kBlock)};
    MPI_Datatype types[2] = {block, MPI_BYTE};
    const int rc = MPI_Type_create_struct(2, lengths, displacements, types, &type_);
    MPI_Type_free(&block);
    check(rc, "MPI_Type_create_struct");
    count_ = 1;
  }
  owned_ = true;
  check(MPI_Type_commit(&type_), "MPI_Type_commit");
}

ByteType::~ByteType() {
  // Freeing a datatype does not affect operations still using it.
  if (owned_ && !is_finalized()) MPI_Type_free(&type_);
}

bool ScatteredBytes::fits(std::span<const std::span<std::byte>> pieces) noexcept {
  return pieces.size() <= static_cast<std::size_t>(INT_MAX) &&
         std::all_of(pieces.begin(), pieces.end(),
                     [](std::span<std::byte> p) { return p.size() <= static_cast<std::size_t>(INT_MAX); });
}

ScatteredBytes::ScatteredBytes(std::span<const std::span<std::byte>> pieces, std::optional<std::size_t> extent) {
  check_argument(fits(pieces), "ScatteredBytes: a piece of more than INT_MAX bytes");
  std::vector<int> lengths;
  std::vector<MPI_Aint> addresses;
  for (const std::span<std::byte> piece : pieces) {
    if (piece.empty()) continue;
    MPI_Aint address = 0;
    check(MPI_Get_address(piece.data(), &address), "MPI_Get_address");
    lengths.push_back(static_cast<int>(piece.size()));
    addresses.push_back(address);
  }
  check(MPI_Type_create_hindexed(static_cast<int>(lengths.size()), lengths.data(), addresses.data(), MPI_BYTE, &type_),
        "MPI_Type_create_hindexed");
  if (extent) {
    MPI_Datatype resized = MPI_DATATYPE_NULL;
    const int rc = MPI_Type_create_resized(type_, 0, static_cast<MPI_Aint>(*extent), &resized);
    MPI_Type_free(&type_);
    check(rc, "MPI_Type_create_resized");
    type_ = resized;
  }
  if (const int rc = MPI_Type_commit(&type_); rc != MPI_SUCCESS) {
    MPI_Type_free(&type_);
    check(rc, "MPI_Type_commit");
  }
}

ScatteredBytes::~ScatteredBytes() {
  if (type_ != MPI_DATATYPE_NULL && !is_finalized()) MPI_Type_free(&type_);
}

Operation::~Operation() {
  for (Entry& e : entries_) abandon(e.request, buffers_, e.kind);
}

MPI_Request* Operation::add(Request kind) {
  entries_.push_back({MPI_REQUEST_NULL, kind, MPI_Status{}});
  return &entries_.back().request;
}

bool Operation::wait(Clock::time_point deadline, Progress progress) {
  detail::Backoff backoff;
  for (;;) {
    bool done = true;
    for (Entry& e : entries_) {
      if (e.request == MPI_REQUEST_NULL) continue;
      int flag = 0;
      check(MPI_Test(&e.request, &flag, &e.status), "MPI_Test");
      if (flag == 0) {
        done = false;
      } else if (progress == Progress::peer_then_data) {
        progress = Progress::moving_data;
      }
    }
    if (done) return true;
    if (Clock::now() >= deadline) return false;
    if (progress == Progress::moving_data) {
      std::this_thread::yield();  // lets the peer ranks sharing this core progress too
    } else {
      backoff.pause();
    }
  }
}

}  // namespace stagekit::dist::mpi_detail
