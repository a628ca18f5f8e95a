// File: inference_plan_internal.h
//
// What the three parts of InferencePlan share (inference_plan_lowering.cc
// turns a network into ops, inference_plan_compile.cc builds their oneDNN
// primitives, inference_plan_runtime.cc runs them): the op record and the
// scope that pins the calling thread to one OpenMP thread. Not for use
// outside model/inference_plan_*.cc.
#ifndef ANORAND_MODEL_INFERENCE_PLAN_INTERNAL_H_
#define ANORAND_MODEL_INFERENCE_PLAN_INTERNAL_H_

#include <omp.h>

#include <vector>

#include "model/inference_plan.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace anorand {

// One matmul of the forward pass: columns [src_col, src_col + k) of buffer
// src_buf times weights (n x k) into columns [dst_col, dst_col + n) of
// buffer dst_buf, with its fused post-ops; a group plan holds every
// member's weights and biases one after another.
struct InferencePlan::Op {
  int src_buf = 0, src_col = 0, k = 0;
  int dst_buf = 0, dst_col = 0, n = 0;
  bool relu = false, sigmoid = false, accumulate = false, has_bias = true;
  std::vector<float> weights;  // n x k row-major (PyTorch layout), folded
  std::vector<float> bias;     // n
  struct PerClass {
    dnnl::matmul prim;
    dnnl::memory weights;  // in the layout the primitive wants
  } cls[kNumClasses];
};

namespace inference_plan_internal {

// Sets the calling thread's OpenMP thread count to 1 for its lifetime and
// restores it after (the setting is per thread and cheap to change).
class OneOmpThread {
 public:
  OneOmpThread() : saved_(omp_get_max_threads()) {
    if (saved_ != 1) omp_set_num_threads(1);
  }
  ~OneOmpThread() {
    if (saved_ != 1) omp_set_num_threads(saved_);
  }
  OneOmpThread(const OneOmpThread&) = delete;
  OneOmpThread& operator=(const OneOmpThread&) = delete;

 private:
  const int saved_;
};

}  // namespace inference_plan_internal
}  // namespace anorand

#endif  // ANORAND_MODEL_INFERENCE_PLAN_INTERNAL_H_
