// numbers_as_doubles.cpp — BROKEN: exact scalar leaves. Every number leaf of the state dict is held
// as a double and written back as text, as a stager keeping its non-tensor skeleton in JSON does:
// ints beyond 2^53 (64-bit RNG seeds) lose their low bits, and a NaN loses its payload and sign.
// Small ints and ordinary floats come back equal, so only exact-only values show it.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"

namespace stagekit_example {
namespace {

class NumbersAsDoubles final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;

 protected:
  Value stage_value(const Value& source) override {
    if (source.kind() == Value::Kind::integer) return Value(through_double(source.as_int()));
    if (source.kind() == Value::Kind::floating) return Value(through_text(source.as_double()));
    return MinimalStager::stage_value(source);
  }

 private:
  static std::int64_t through_double(std::int64_t i) {
    const double d = static_cast<double>(i);
    if (d >= 9223372036854775807.0) return std::numeric_limits<std::int64_t>::max();  // 2^63 does not fit
    return static_cast<std::int64_t>(d);
  }
  static double through_text(double d) {
    char text[32];
    std::snprintf(text, sizeof text, "%.17g", d);  // exact for every double but a NaN: "nan" or "-nan"
    return std::strtod(text, nullptr);
  }
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<NumbersAsDoubles>("example-broken-numbers-as-doubles");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
