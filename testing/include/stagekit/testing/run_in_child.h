// stagekit/testing/run_in_child.h — a check run in a forked child, with a time limit.
//
// The child is a copy of this process (memory, implementation objects); it runs `fn` and reports the
// string it returns (empty = success) back to the parent, then _exit()s without running
// destructors. A crash, a missing verdict or the time limit (the child and its process group are
// killed) come back as failure messages. Used for checks that change process-wide state (resource
// limits, privileges) or may crash. Built on stagekit/testing/child_process.h; the child's output
// goes where this process's goes.
#pragma once

#include <chrono>
#include <functional>
#include <string>

namespace stagekit::probe {

struct ChildOutcome {
  bool ok = false;
  std::string message;
};

[[nodiscard]] ChildOutcome run_in_child(const std::function<std::string()>& fn, std::chrono::seconds limit);

}  // namespace stagekit::probe
