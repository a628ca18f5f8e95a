// File: shadow_spec.h
//
// A model's shadow as the store keeps it (<model_dir>/<name>/shadow.json)
// and the registry holds it: the version or alias that scores a sampled
// share of the model's records (shadow.h does the scoring).
#ifndef ANORAND_SERVER_SHADOW_SPEC_H_
#define ANORAND_SERVER_SHADOW_SPEC_H_

#include <cstdint>
#include <string>

namespace anorand {

struct ShadowSpec {
  int64_t version = 0;  // exactly one of version (>= 1) and alias is set
  std::string alias;
  double sample = 0;    // in (0, 1]
};

}  // namespace anorand

#endif  // ANORAND_SERVER_SHADOW_SPEC_H_
