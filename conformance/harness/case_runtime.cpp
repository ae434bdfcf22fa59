// The case registry, CaseContext and run_case(): requirements first, then the body, every exception
// turned into an outcome.
#include <algorithm>
#include <exception>

#include <fmt/format.h>

#include "stagekit/conformance/case.h"
#include "stagekit/core/cuda.h"

namespace stagekit::conformance {
namespace {

// Thrown by CaseContext::require / not_supported to end a case early.
struct CaseAbort {};
struct CaseNotSupported {
  std::string reason;
};

constexpr std::size_t kMaxReportedFailures = 8;

}  // namespace

std::string_view profile_name(Profile p) noexcept {
  switch (p) {
    case Profile::upstream: return "upstream";
    case Profile::strict: return "strict";
    case Profile::full: return "full";
  }
  return "?";
}

std::optional<Profile> profile_named(std::string_view name) noexcept {
  for (Profile p : {Profile::upstream, Profile::strict, Profile::full}) {
    if (profile_name(p) == name) return p;
  }
  return std::nullopt;
}

std::string_view outcome_name(Outcome o) noexcept {
  switch (o) {
    case Outcome::pass: return "pass";
    case Outcome::fail: return "fail";
    case Outcome::not_supported: return "not_supported";
    case Outcome::waived: return "waived";
    case Outcome::crash: return "crash";
    case Outcome::timeout: return "timeout";
  }
  return "unknown";
}

int severity(Outcome o) noexcept {
  switch (o) {
    case Outcome::pass: return 0;
    case Outcome::not_supported: return 1;
    case Outcome::waived: return 2;
    case Outcome::fail: return 3;
    case Outcome::timeout: return 4;
    case Outcome::crash: return 5;
  }
  return 5;
}

bool is_bad(Outcome o) noexcept { return o == Outcome::fail || o == Outcome::timeout || o == Outcome::crash; }

std::optional<Outcome> parse_outcome(std::string_view name) noexcept {
  for (Outcome o :
       {Outcome::pass, Outcome::fail, Outcome::not_supported, Outcome::waived, Outcome::crash, Outcome::timeout}) {
    if (outcome_name(o) == name) return o;
  }
  return std::nullopt;
}

std::string Failure::str() const { return fmt::format("{}: {}: {}", path, property, detail); }

std::unique_ptr<PendingResult> StagerUnderTest::stage_async(const Value&) {
  throw Unsupported("stage_async is not implemented by this stager");
}

std::unique_ptr<ReplicationStagerUnderTest> Implementation::make_replication_stager(dist::Communicator&,
                                                                                    const ReplicationConfig&) {
  throw Unsupported("this implementation has no replication stager");
}

Value Implementation::load_replica(const std::string&) {
  throw Unsupported("this implementation has no replica loader");
}

std::vector<std::pair<dist::ObjectPath, Value>> StateDictUtilitiesUnderTest::traverse_state_dict(const Value&) {
  throw Unsupported("these state-dict utilities have no traverse_state_dict");
}

dist::FlatStateDict StateDictUtilitiesUnderTest::flatten_state_dict(const Value&) {
  throw Unsupported("these state-dict utilities have no flatten_state_dict");
}

void StateDictUtilitiesUnderTest::set_element(Value&, const dist::ObjectPath&, const Value&) {
  throw Unsupported("these state-dict utilities have no set_element");
}

Value StateDictUtilitiesUnderTest::unflatten_state_dict(const Value&, const dist::FlattenMapping&) {
  throw Unsupported("these state-dict utilities have no unflatten_state_dict");
}

std::unique_ptr<AsyncStagerUnderTest> Implementation::make_default_stager(const StagingOptions&) {
  throw Unsupported("this implementation has no DefaultStager");
}

std::unique_ptr<AsyncStagerUnderTest> Implementation::make_blocking_async_stager(const BlockingAsyncStagerConfig&) {
  throw Unsupported("this implementation has no BlockingAsyncStager");
}

AsyncSaveReturn Implementation::async_save(const Value&, const std::string&, AsyncStagerUnderTest*) {
  throw Unsupported("this implementation has no async_save");
}

Value Implementation::load_checkpoint(const std::string&) {
  throw Unsupported("this implementation has no checkpoint loader");
}

// ---- CaseContext ---------------------------------------------------------------------------------

CaseContext::CaseContext(Implementation& impl, const CaseInfo& info)
    : impl_(impl), caps_(impl.capabilities()), info_(info) {}

std::unique_ptr<StagerUnderTest> CaseContext::make_stager(const StagerConfig& config) {
  auto stager = impl_.make_stager(config);
  require(stager != nullptr, "<implementation>", "make_stager", "returned no stager");
  return stager;
}

bool CaseContext::check(bool ok, std::string_view path, std::string_view property, std::string detail) {
  if (!ok) {
    const std::lock_guard lock(mutex_);
    record({std::string(path), std::string(property), std::move(detail)});
  }
  return ok;
}

void CaseContext::record(Failure failure) {
  const auto same = [&](const Failure& f) {
    return f.path == failure.path && f.property == failure.property && f.detail == failure.detail;
  };
  if (std::none_of(failures_.begin(), failures_.end(), same)) failures_.push_back(std::move(failure));
}

void CaseContext::require(bool ok, std::string_view path, std::string_view property, std::string detail) {
  if (!check(ok, path, property, std::move(detail))) throw CaseAbort{};
}

void CaseContext::add_failures(const std::vector<Failure>& failures) {
  const std::lock_guard lock(mutex_);
  for (const Failure& f : failures) record(f);
}

StateDictUtilitiesUnderTest& CaseContext::utilities() {
  const std::lock_guard lock(mutex_);
  if (!utilities_) utilities_ = impl_.make_utilities();
  if (!utilities_) {
    failures_.push_back({"<implementation>", "make_utilities",
                         "returned nothing although the implementation "
                         "declares the state_dict_utilities capability"});
    throw CaseAbort{};
  }
  return *utilities_;
}

void CaseContext::run_ranks(int world_size, const std::function<void(dist::Communicator&)>& body,
                            std::chrono::milliseconds timeout) {
  if (dist::Communicator* world = process_world()) {
    if (world->size() != world_size) {
      not_supported(fmt::format("the case needs {} ranks and this process world has {}", world_size, world->size()));
    }
    // A duplicate per case: a timed-out case leaves its broken communicator behind, not the world's.
    auto comm = world->split(0, world->rank());
    comm->set_timeout(timeout);
    body(*comm);
    return;
  }
  // The first exception of any rank (a CaseAbort from require(), an error) ends the case as usual.
  dist::run_thread_world(world_size, body, timeout);
}

namespace {
dist::Communicator* g_process_world = nullptr;
}  // namespace

void set_process_world(dist::Communicator* world) noexcept { g_process_world = world; }
dist::Communicator* process_world() noexcept { return g_process_world; }

void CaseContext::not_supported(std::string reason) { throw CaseNotSupported{std::move(reason)}; }

// ---- registry -------------------------------------------------------------------------------------

CaseRegistry& CaseRegistry::instance() {
  static CaseRegistry registry;
  return registry;
}

void CaseRegistry::add(const CaseId& id, std::string description, std::string source, Profile profile,
                       Requirements requirements, CaseBody body) {
  std::string text;
  try {
    text = id.str();
    if (CaseId::parse(text) != id) throw InvalidArgument("it does not parse back to the same parts");
  } catch (const InvalidArgument& e) {
    throw InternalError(fmt::format("conformance case {}.{}: malformed ID: {}", id.area, id.feature, e.detail()));
  }
  if (find(text) != nullptr) throw InternalError("conformance case registered twice: " + text);
  auto contradicts = [&](std::string_view what) {
    return InternalError(fmt::format("conformance case {}: the ID says {}, its requirements do not", text, what));
  };
  if ((id.source == "cuda") != requirements.cuda_device) throw contradicts(fmt::format("source {}", id.source));
  if (id.world_size != requirements.world_size) throw contradicts(fmt::format("{} rank(s)", id.world_size));
  if (id.config.starts_with("pin1") && !requirements.pin_memory) throw contradicts("pin_memory");
  if (id.config.ends_with("share1") && !requirements.share_memory) throw contradicts("share_memory");
  cases_.push_back(
      {CaseInfo{std::move(text), std::move(description), std::move(source), profile}, requirements, std::move(body)});
}

const Case* CaseRegistry::find(std::string_view id) const {
  auto it = std::find_if(cases_.begin(), cases_.end(), [&](const Case& c) { return c.info.id == id; });
  return it == cases_.end() ? nullptr : &*it;
}

// ---- running ---------------------------------------------------------------------------------------

std::string_view undeclared_capability(const Requirements& r, const Capabilities& caps) noexcept {
  if (r.cuda_device && !caps.cuda_sources) return "cuda_sources";
  if (r.pin_memory && !caps.pin_memory) return "pin_memory";
  if (r.share_memory && !caps.share_memory) return "share_memory";
  if (r.non_blocking && !caps.non_blocking) return "non_blocking";
  if (r.cache_stats && !caps.cache_stats) return "cache_stats";
  if (r.dtensor && !caps.dtensor) return "dtensor";
  if (r.sharded_tensor && !caps.sharded_tensor) return "sharded_tensor";
  if (r.state_dict_utilities && !caps.state_dict_utilities) return "state_dict_utilities";
  if (r.replication && !caps.replication) return "replication";
  if (r.async_staging && !caps.async_staging) return "async_staging";
  return {};
}

std::string unmet_requirement(const Requirements& r, const Capabilities& caps) {
  const std::string_view undeclared = undeclared_capability(r, caps);
  auto not_declared = [](std::string_view capability) {
    return fmt::format("the implementation does not declare the {} capability", capability);
  };
  if (r.cuda_device) {
    if (!caps.cuda_sources) return not_declared("cuda_sources");
    if (!cuda::available()) return cuda::availability().reason;
  }
  if (r.no_cuda_device && cuda::available()) {
    return "a CUDA device is present: this case checks the host-only path (mlock and RLIMIT_MEMLOCK)";
  }
  if (!undeclared.empty()) return not_declared(undeclared);
  return {};
}

CaseResult run_case(const Case& c, Implementation& impl) {
  CaseResult result;
  result.info = c.info;
  const auto start = std::chrono::steady_clock::now();
  auto finish = [&](Outcome outcome, std::string reason) {
    result.outcome = outcome;
    result.reason = std::move(reason);
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return result;
  };
  std::string unmet;
  try {
    unmet = unmet_requirement(c.requirements, impl.capabilities());
  } catch (const std::exception& e) {
    return finish(Outcome::fail, fmt::format("capabilities() threw: {}", e.what()));
  }
  if (!unmet.empty()) return finish(Outcome::not_supported, unmet);

  CaseContext ctx(impl, c.info);
  try {
    c.body(ctx);
  } catch (const CaseAbort&) {
    // failures already recorded
  } catch (const CaseNotSupported& n) {
    return finish(Outcome::not_supported, n.reason);
  } catch (const InputNotRepresentable& n) {
    return finish(Outcome::not_supported, n.what());
  } catch (const Error& e) {
    ctx.check(false, e.path().empty() ? "<stager>" : e.path(), "unexpected error",
              fmt::format("{} error: {}", error_code_name(e.code()), e.detail()));
  } catch (const std::exception& e) {
    ctx.check(false, "<stager>", "unexpected exception", e.what());
  } catch (...) {
    ctx.check(false, "<stager>", "unexpected exception", "a non-standard exception escaped");
  }
  if (!ctx.failed()) return finish(Outcome::pass, {});
  std::string reason;
  const auto& failures = ctx.failures();
  for (std::size_t i = 0; i < failures.size() && i < kMaxReportedFailures; ++i) {
    if (!reason.empty()) reason += "; ";
    reason += failures[i].str();
  }
  if (failures.size() > kMaxReportedFailures) {
    reason += fmt::format("; and {} more failure(s)", failures.size() - kMaxReportedFailures);
  }
  return finish(Outcome::fail, reason);
}

}  // namespace stagekit::conformance
