// container_mutations.h — a mutation the mutant tests of the stager, the utilities and replication
// share: the Python container kinds losing their types (spec C.1.9, C.4.4).
#pragma once

#include <memory>

#include "stagekit/core/value.h"

namespace stagekit::conformance {

// The top-level entries of a dict with dict subclasses and namedtuples made plain (what upstream's
// utilities do, C.4.4); any other value is returned as it is.
inline Value plain_top_level_containers(const Value& v) {
  if (v.kind() != Value::Kind::dict) return v;
  auto d = std::make_shared<Dict>();
  for (const auto& [k, i] : v.as_dict().entries()) {
    if (i.kind() == Value::Kind::tuple) {
      d->set(k, Value::tuple(i.as_tuple().items()));
    } else if (i.kind() == Value::Kind::dict) {
      auto plain = std::make_shared<Dict>(i.as_dict());
      plain->set_type_name("");
      d->set(k, Value(plain));
    } else {
      d->set(k, i);
    }
  }
  return Value(d);
}

}  // namespace stagekit::conformance
