// What the mutant tests share: running one registered case against an implementation.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "stagekit/conformance/case.h"

namespace stagekit::conformance {

// The outcome of case `id` run in this process against `impl`; a missing case is a test failure
// (and reported as crash).
inline Outcome case_outcome(Implementation& impl, const std::string& id) {
  const Case* c = CaseRegistry::instance().find(id);
  EXPECT_NE(c, nullptr) << "no case " << id;
  return c == nullptr ? Outcome::crash : run_case(*c, impl).outcome;
}

}  // namespace stagekit::conformance
