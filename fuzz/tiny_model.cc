#include "fuzz/tiny_model.h"

#include "model/data/synthetic_data.h"
#include "model/trainer.h"

namespace anorand::fuzz {

absl::StatusOr<v1::ModelFile> TinyModel(int cols, bool calibrated) {
  SyntheticOptions data_options;
  data_options.rows = 200;
  data_options.cols = cols;
  data_options.informative = cols;
  data_options.seed = 1;
  Dataset data = MakeSyntheticData(data_options);
  data.labels.clear();
  // Narrow feature ranges, as in data already scaled into [0, 1]: the
  // model's normaliser then divides by less than 1, so extreme inputs
  // overflow to infinity inside the model (a path worth fuzzing).
  for (float& v : data.x) v *= 1e-3f;

  v1::TrainingParams p;
  p.set_preset("paper");
  if (calibrated) p.set_score_rule(v1::SCORE_RULE_CALIBRATED);
  p.set_max_epochs(2);
  p.set_min_steps(0);
  p.set_seed(1);
  for (int w : {8, 4}) p.add_noise_detector_widths(w);
  for (int w : {8, 4}) p.add_encoder_widths(w);
  p.add_decoder_widths(8);
  return TrainModel(data, p);
}

}  // namespace anorand::fuzz
