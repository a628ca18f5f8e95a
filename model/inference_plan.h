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
// that holds it, padded with zero rows in the thread's arena (fixed shapes
// get oneDNN's JIT kernels; a runtime row count gets its generic GEMM,
// slower even with the padding: docs/PERFORMANCE.md). A plan is immutable after
// Compile() and Run() is safe from many threads at once, each call on one
// oneDNN thread (the primitives are created single-threaded, and Run pins
// the calling thread to one OpenMP thread); each call uses its thread's
// stream, activation arena and user-mode scratchpad (shared by all plans
// on that thread), and memory objects created once per thread and shape
// class and re-pointed per call (their creation costs more than a one-row
// forward pass: docs/PERFORMANCE.md).
//
// The implementation is in three files: inference_plan_lowering.cc
// (network to ops), inference_plan_compile.cc (ops to oneDNN primitives)
// and inference_plan_runtime.cc (Run and the per-thread state).
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
  // One plan for several networks of the same shape (an ensemble's
  // members): each layer of all of them is one batched oneDNN matmul (the
  // biases as a broadcast add post-op: as a batched matmul bias oneDNN 2.6
  // only has a reference kernel), so a call runs as many primitives as one
  // network's plan. Shape classes up to max_tile_rows only; larger batches
  // run in tiles of the largest. INVALID_ARGUMENT when the shapes differ.
  // Faster than one plan per network for small batches and slower for
  // large ones, where per-network kernels win (docs/PERFORMANCE.md has the
  // crossover), hence max_tile_rows.
  static absl::StatusOr<std::unique_ptr<InferencePlan>> CompileGroup(
      const std::vector<const v1::Network*>& nets, bool head_sigmoid = true,
      int max_tile_rows = 16);

  // x: rows x input_features, normalised. y_hat: rows; x_hat: rows x
  // input_features. Thread-safe. Throws nothing: oneDNN errors become
  // INTERNAL.
  // A group plan (groups() > 1) takes and returns its members one after
  // another: x is groups() x rows x input_features (member g's records,
  // normalised its way, from x + g * rows * input_features), y_hat
  // groups() x rows, x_hat like x.
  absl::Status Run(const float* x, int64_t rows, float* y_hat, float* x_hat) const;
  int groups() const { return static_cast<int>(groups_); }

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
  static void BuildOps(const v1::Network& net, bool head_sigmoid, InferencePlan* plan);
  dnnl::memory::desc ActivationDesc(int cls, int buf, int64_t cols) const;
  dnnl::memory::desc WeightsDesc(const Op& op, bool any) const;
  dnnl::memory::desc BiasDesc(const Op& op) const;
  // Every buffer's place in the thread's arena for shape class `cls`.
  void ArenaPointers(int cls, float** p) const;
  void RunChunk(float* const* p, int cls, ThreadState& state) const;
  ThreadState& StateForThisThread() const;

  int d_ = 0;
  int64_t groups_ = 1;  // networks run side by side (CompileGroup)
  int classes_ = kNumClasses;  // shape classes compiled: kClassRows[0..classes_)
  size_t arena_floats_ = 0;    // activations of the largest class, all groups
  int64_t macs_per_row_ = 0;
  std::vector<Op> ops_;
  std::vector<int> buffer_widths_;  // buffer 0 is the input, last two y_hat/x_hat
  int yhat_buffer_ = 0, xhat_buffer_ = 0;
  size_t scratch_bytes_ = 0;
  uint64_t id_ = 0;  // unique per plan: the key of the thread-local state
};

}  // namespace anorand

#endif  // ANORAND_MODEL_INFERENCE_PLAN_H_
