// stagekit/torch/torch_kind.h — the `torch` kind of implementation spec (a row of the loader's table,
// stagekit/loader/implementation_loader.h): a Python stager on torch tensors, reached through an
// embedded CPython.
//
//   torch                          PyTorch's own StateDictStager, where the installed torch has it
//   torch:PACKAGE.MODULE:FACTORY   a factory Python finds the way it finds any module (PYTHONPATH,
//                                  the working directory); see stagekit_torch/protocol.py
//
// Invariants: loading a spec starts no interpreter (the runner's parent never initialises Python);
// the interpreter starts in the case's own process, which a fork server (the source's fork_server)
// forks with torch already imported. A stagekit built without Python (STAGEKIT_WITH_PYTHON=OFF)
// still claims these specs and refuses them, saying why.
#pragma once

#include <string>
#include <string_view>

#include "stagekit/loader/implementation_loader.h"

namespace stagekit::conformance {

[[nodiscard]] bool claims_torch(std::string_view spec);
[[nodiscard]] ImplementationSource load_torch(const std::string& spec);

}  // namespace stagekit::conformance
