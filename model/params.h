// File: params.h
//
// Training hyperparameters: presets, the layer-width rule, validation.
// The proto message anorand.v1.TrainingParams is the one representation;
// ResolveParams() turns what a user set into a message with every field set
// (the preset's value wherever the user left one unset), or says which
// fields are wrong, all of them in one message.
//
// Presets:
//   "paper"   METHOD.md read literally (golden/ checks this one).
//   "default" the measured default (docs/ACCURACY.md says how it was chosen).
#ifndef ANORAND_MODEL_PARAMS_H_
#define ANORAND_MODEL_PARAMS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "anorand/v1/model.pb.h"

namespace anorand {

// Names of the known presets, in the order the docs list them.
std::vector<std::string> PresetNames();

// Layer widths for input width d when the user gave none. The rule
// (METHOD.md section 3 asks for one): h1 = clamp(next power of two >= d,
// 64, 512), then h1/2, then the latent max(16, h1/4); the decoder mirrors
// the encoder after its latent: [h1/2, h1]. d = 21 gives the paper's
// d-64-32-16 / 32-32-64-d.
std::vector<int> DefaultEncoderWidths(int d);
std::vector<int> DefaultDecoderWidths(int d);

// Fills every unset field from the preset and the width rule and checks
// ranges. INVALID_ARGUMENT names every bad field and its allowed range.
absl::StatusOr<v1::TrainingParams> ResolveParams(const v1::TrainingParams& user,
                                                 int input_features);

// Sets one field from "name=value" text (the CLI's --param). Names are the
// proto field names; widths take a comma list ("64,32,16").
absl::Status SetParamFromString(const std::string& assignment, v1::TrainingParams* params);

}  // namespace anorand

#endif  // ANORAND_MODEL_PARAMS_H_
