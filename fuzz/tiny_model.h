// File: tiny_model.h
//
// A small real model for the fuzz targets and the seed generator: trained
// in well under a second on seeded demo data (model/data/synthetic_data.h)
// shrunk to narrow feature ranges, with narrow layers, so its file is a few
// KB. The same arguments give the same model on the same machine.
//
// Thread safety: stateless. Failure behaviour: returns the trainer's
// status (it cannot fail for the fixed parameters used here).
#ifndef ANORAND_FUZZ_TINY_MODEL_H_
#define ANORAND_FUZZ_TINY_MODEL_H_

#include "absl/status/statusor.h"
#include "anorand/v1/model.pb.h"

namespace anorand::fuzz {

// A model of `cols` input features with 8-4 / 8-4 / 8 hidden layers; the
// paper's score rule, or the calibrated one (whose quantile tables make the
// file about 8 KB larger).
absl::StatusOr<v1::ModelFile> TinyModel(int cols, bool calibrated);

}  // namespace anorand::fuzz

#endif  // ANORAND_FUZZ_TINY_MODEL_H_
