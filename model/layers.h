// File: layers.h
//
// Trainable layers on oneDNN primitives, for the training graph (network.h):
//   DenseOp          y = x W^T + b         (matmul primitives: forward, x-gradient
//                                          dy W, weight gradient dy^T x, bias
//                                          gradient 1^T dy)
//   BatchNormReluOp  relu(batchnorm(x))    (one fused batch-normalisation primitive
//                                          over an N x C x 1 x 1 channels-last view,
//                                          which selects oneDNN's JIT kernel; the
//                                          plain 2-D layout runs a reference one
//                                          about 10x slower)
// Primitives are created once per batch size and kept. Parameters, their
// gradients and Adam moments live in Param. Not thread-safe: one training
// graph is driven by one thread (oneDNN parallelises inside each call).
// oneDNN errors surface as dnnl::error exceptions; the trainer catches them.
#ifndef ANORAND_MODEL_LAYERS_H_
#define ANORAND_MODEL_LAYERS_H_

#include <cstdint>
#include <map>
#include <vector>

#include "model/dnnl_util.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace anorand {

struct Param {
  std::vector<float> value, grad, m, v;
  void Resize(size_t n) {
    value.assign(n, 0.0f);
    grad.assign(n, 0.0f);
    m.assign(n, 0.0f);
    v.assign(n, 0.0f);
  }
};

class DenseOp {
 public:
  DenseOp(int in, int out);
  int in() const { return in_; }
  int out() const { return out_; }

  // dst = src W^T + b. src is batch x in, dst batch x out (row-major).
  void Forward(dnnl::stream& s, int batch, const float* src, float* dst);
  // diff_src = diff_dst W.
  void BackwardData(dnnl::stream& s, int batch, const float* diff_dst, float* diff_src);
  // weight.grad = diff_dst^T src, bias.grad = column sums of diff_dst
  // (overwritten, not accumulated).
  void BackwardWeights(dnnl::stream& s, int batch, const float* src, const float* diff_dst);

  Param weight;  // out x in (PyTorch layout)
  Param bias;    // out

 private:
  struct Prims {
    BoundPrimitive fwd, bwd_data, bwd_weights, bwd_bias;
  };
  Prims& Get(int batch);

  int in_, out_;
  std::vector<float> ones_;  // the 1^T of the bias gradient
  std::map<int, Prims> prims_;
};

class BatchNormReluOp {
 public:
  BatchNormReluOp(int width, float eps, float momentum);
  int width() const { return width_; }

  // Training: batch statistics, updates the running ones, remembers what
  // Backward needs for this batch size.
  void ForwardTrain(dnnl::stream& s, int batch, const float* src, float* dst);
  // Eval: running statistics.
  void ForwardEval(dnnl::stream& s, int batch, const float* src, float* dst);
  // Gradients for the last ForwardTrain of this batch size; diff_dst is the
  // gradient at the ReLU output. Sets gamma.grad and beta.grad.
  void Backward(dnnl::stream& s, int batch, const float* src, const float* diff_dst,
                float* diff_src);

  Param gamma, beta;
  std::vector<float> running_mean, running_var;
  float eps() const { return eps_; }

 private:
  struct Prims {
    BoundPrimitive fwd_train, fwd_eval, bwd;
    std::vector<uint8_t> workspace;
  };
  Prims& Get(int batch);

  int width_;
  float eps_, momentum_;
  std::vector<float> mean_, var_;  // statistics of the last training batch
  std::map<int, Prims> prims_;
};

}  // namespace anorand

#endif  // ANORAND_MODEL_LAYERS_H_
