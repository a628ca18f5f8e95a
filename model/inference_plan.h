// File: inference_plan.h
//
// The compiled forward pass of a stored network (METHOD.md section 7):
// BatchNorm folded into the preceding dense layer, dropout gone, bias and
// ReLU (or the head's sigmoid) fused into each oneDNN matmul as post-ops,
// the two blocks' first layers computed as one product, and the decoder's
// concat(z0, z1) replaced by two products summed in place (no copy).
//
// Primitives are built once, at compile time, for five batch-shape classes
// of 1, 4, 16, 64 and 256 (kTileRows) rows, each a fixed-shape kernel.
// Larger batches run tile by tile; a remainder runs in the smallest class
// that holds it, padded with zero rows in the thread's arena. (A runtime
// row count was tried first: oneDNN then falls back to a generic GEMM that
// took 25 us for 7 rows against 8 us padded to 16.) A plan is immutable after
// Compile() and Run() is safe from many threads at once, each call on one
// oneDNN thread (the primitives are created single-threaded); each call uses its
// own thread-local stream, activations and user-mode scratchpad, and
// memory objects created once per thread and shape class and re-pointed per
// call (creating them per call cost half of a one-row
// forward pass).
#ifndef ANORAND_MODEL_INFERENCE_PLAN_H_
#define ANORAND_MODEL_INFERENCE_PLAN_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "anorand/v1/model.pb.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace anorand {

class InferencePlan {
 public:
  static constexpr int kTileRows = 256;
  ~InferencePlan();

  // `net` must already be validated (model_file.h does it for files).
  // head_sigmoid false: Run's y_hat holds the noise head's logit instead of
  // its sigmoid (ScoreStats.noise_logit).
  static absl::StatusOr<std::unique_ptr<InferencePlan>> Compile(const v1::Network& net,
                                                                bool head_sigmoid = true);

  // x: rows x input_features, normalised. y_hat: rows; x_hat: rows x
  // input_features. Thread-safe. Throws nothing: oneDNN errors become
  // INTERNAL.
  absl::Status Run(const float* x, int64_t rows, float* y_hat, float* x_hat) const;

  int input_features() const { return d_; }
  // Multiply-adds per row of the forward pass (for GFLOP/s reports).
  int64_t macs_per_row() const { return macs_per_row_; }

 private:
  static constexpr int kNumClasses = 5;
  static constexpr int kClassRows[kNumClasses] = {1, 4, 16, 64, kTileRows};
  struct Op;
  struct ThreadState;
  struct Buffer {
    int width;
    int64_t offset;  // in floats per row-block of the arena: offset * rows
  };
  InferencePlan() = default;
  void RunChunk(const float* x, int cls, float* y_hat, float* x_hat, ThreadState& state) const;
  ThreadState& StateForThisThread() const;

  int d_ = 0;
  int64_t macs_per_row_ = 0;
  std::vector<Op> ops_;
  std::vector<int> buffer_widths_;  // buffer 0 is the input, last two y_hat/x_hat
  int yhat_buffer_ = 0, xhat_buffer_ = 0;
  size_t scratch_bytes_ = 0;
  uint64_t id_ = 0;  // unique per plan: the key of the thread-local state
};

}  // namespace anorand

#endif  // ANORAND_MODEL_INFERENCE_PLAN_H_
