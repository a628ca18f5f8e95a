// File: inference_plan.h
//
// The compiled forward pass of a stored network (METHOD.md section 7):
// BatchNorm folded into the preceding dense layer, dropout gone, bias and
// ReLU (or the head's sigmoid) fused into each oneDNN matmul as post-ops,
// the two blocks' first layers computed as one product, and the decoder's
// concat(z0, z1) replaced by two products summed in place (no copy).
//
// Primitives are built once, at compile time, for three batch-shape
// classes: one row, a tile of kTileRows rows, and a runtime row count below
// the tile; larger batches run tile by tile. A plan is immutable after
// Compile() and Run() is safe from many threads at once: each call uses its
// own thread-local stream, activations and user-mode scratchpad.
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
  static absl::StatusOr<std::unique_ptr<InferencePlan>> Compile(const v1::Network& net);

  // x: rows x input_features, normalised. y_hat: rows; x_hat: rows x
  // input_features. Thread-safe. Throws nothing: oneDNN errors become
  // INTERNAL.
  absl::Status Run(const float* x, int64_t rows, float* y_hat, float* x_hat) const;

  int input_features() const { return d_; }
  // Multiply-adds per row of the forward pass (for GFLOP/s reports).
  int64_t macs_per_row() const { return macs_per_row_; }

 private:
  enum ShapeClass { kOne = 0, kTile = 1, kRuntime = 2, kNumClasses = 3 };
  struct Op;
  struct Buffer {
    int width;
    int64_t offset;  // in floats per row-block of the arena: offset * rows
  };
  InferencePlan() = default;
  absl::Status RunChunk(const float* x, int rows, ShapeClass cls, float* y_hat, float* x_hat,
                        std::vector<float>& arena, std::vector<uint8_t>& scratch,
                        dnnl::stream& stream) const;

  int d_ = 0;
  int64_t macs_per_row_ = 0;
  std::vector<Op> ops_;
  std::vector<int> buffer_widths_;  // buffer 0 is the input, last two y_hat/x_hat
  int yhat_buffer_ = 0, xhat_buffer_ = 0;
  size_t scratch_bytes_ = 0;
};

}  // namespace anorand

#endif  // ANORAND_MODEL_INFERENCE_PLAN_H_
