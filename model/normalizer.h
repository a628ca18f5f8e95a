// File: normalizer.h
//
// Per-feature input scaling (METHOD.md section 1), fitted on training rows,
// stored in the model and applied before every forward pass. A constant
// feature gets scale 1. Pure functions; thread-safe.
#ifndef ANORAND_MODEL_NORMALIZER_H_
#define ANORAND_MODEL_NORMALIZER_H_

#include <cstdint>

#include "anorand/v1/model.pb.h"

namespace anorand {

// Fits `kind` on `rows` x `cols` row-major values.
v1::Normalizer FitNormalizer(v1::Normalizer::Kind kind, const float* x, int64_t rows, int cols);

// out[i] = (x[i] - offset[c]) / scale[c]; out may alias x.
void ApplyNormalizer(const v1::Normalizer& n, const float* x, int64_t rows, int cols, float* out);

}  // namespace anorand

#endif  // ANORAND_MODEL_NORMALIZER_H_
