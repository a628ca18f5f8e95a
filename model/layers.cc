#include "model/layers.h"

#include "model/dnnl_util.h"

namespace anorand {

using dnnl::memory;
using dnnl::normalization_flags;
using dnnl::prop_kind;

DenseOp::DenseOp(int in, int out) : in_(in), out_(out) {
  weight.Resize(static_cast<size_t>(in) * out);
  bias.Resize(out);
}

DenseOp::Prims& DenseOp::Get(int batch) {
  auto it = prims_.find(batch);
  if (it != prims_.end()) return it->second;
  if (static_cast<int>(ones_.size()) < batch) ones_.assign(batch, 1.0f);
  auto& eng = CpuEngine();
  using dnnl::matmul;
  const auto x = MatDesc(batch, in_), y = MatDesc(batch, out_), b = MatDesc(1, out_);
  const auto w = MatDesc(out_, in_);
  const auto wt = memory::desc({in_, out_}, memory::data_type::f32, memory::format_tag::ba);
  const auto yt = memory::desc({out_, batch}, memory::data_type::f32, memory::format_tag::ba);
  const auto ones = MatDesc(1, batch);
  auto mm = [&](const memory::desc& a, const memory::desc& bb, const memory::desc& c) {
    return matmul(matmul::primitive_desc(matmul::desc(a, bb, c), eng));
  };
  Prims p{
      BoundPrimitive(matmul(matmul::primitive_desc(matmul::desc(x, wt, b, y), eng)),
                     {{DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, wt}, {DNNL_ARG_BIAS, b}, {DNNL_ARG_DST, y}}),
      BoundPrimitive(mm(y, w, x), {{DNNL_ARG_SRC, y}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, x}}),
      BoundPrimitive(mm(yt, x, w), {{DNNL_ARG_SRC, yt}, {DNNL_ARG_WEIGHTS, x}, {DNNL_ARG_DST, w}}),
      BoundPrimitive(mm(ones, y, b),
                     {{DNNL_ARG_SRC, ones}, {DNNL_ARG_WEIGHTS, y}, {DNNL_ARG_DST, b}})};
  return prims_.emplace(batch, std::move(p)).first->second;
}

void DenseOp::Forward(dnnl::stream& s, int batch, const float* src, float* dst) {
  Get(batch).fwd.Execute(s, {src, weight.value.data(), bias.value.data(), dst});
}

void DenseOp::BackwardData(dnnl::stream& s, int batch, const float* diff_dst, float* diff_src) {
  Get(batch).bwd_data.Execute(s, {diff_dst, weight.value.data(), diff_src});
}

void DenseOp::BackwardWeights(dnnl::stream& s, int batch, const float* src,
                              const float* diff_dst) {
  Prims& p = Get(batch);
  p.bwd_weights.Execute(s, {diff_dst, src, weight.grad.data()});
  p.bwd_bias.Execute(s, {ones_.data(), diff_dst, bias.grad.data()});
}

BatchNormReluOp::BatchNormReluOp(int width, float eps, float momentum)
    : width_(width), eps_(eps), momentum_(momentum) {
  gamma.Resize(width);
  beta.Resize(width);
  gamma.value.assign(width, 1.0f);
  running_mean.assign(width, 0.0f);
  running_var.assign(width, 1.0f);
  mean_.assign(width, 0.0f);
  var_.assign(width, 1.0f);
}

namespace {

// N x C viewed as N x C x 1 x 1 channels-last: the same bytes as row-major
// N x C, and the layout oneDNN's JIT batch normalisation takes.
memory::desc BnDesc(int batch, int width) {
  return memory::desc({batch, width, 1, 1}, memory::data_type::f32, memory::format_tag::nhwc);
}

}  // namespace

BatchNormReluOp::Prims& BatchNormReluOp::Get(int batch) {
  auto it = prims_.find(batch);
  if (it != prims_.end()) return it->second;
  const auto data = BnDesc(batch, width_);
  const auto vec = VecDesc(width_);
  auto& eng = CpuEngine();
  const auto flags = normalization_flags::use_scale | normalization_flags::use_shift |
                     normalization_flags::fuse_norm_relu;
  dnnl::batch_normalization_forward::primitive_desc train_pd(
      dnnl::batch_normalization_forward::desc(prop_kind::forward_training, data, eps_, flags),
      eng);
  dnnl::batch_normalization_forward::primitive_desc eval_pd(
      dnnl::batch_normalization_forward::desc(prop_kind::forward_inference, data, eps_,
                                              flags | normalization_flags::use_global_stats),
      eng);
  dnnl::batch_normalization_backward::primitive_desc bwd_pd(
      dnnl::batch_normalization_backward::desc(prop_kind::backward, data, data, eps_, flags), eng,
      train_pd);
  const auto ws = train_pd.workspace_desc();
  Prims p{BoundPrimitive(dnnl::batch_normalization_forward(train_pd),
                         {{DNNL_ARG_SRC, data}, {DNNL_ARG_DST, data}, {DNNL_ARG_SCALE, vec},
                          {DNNL_ARG_SHIFT, vec}, {DNNL_ARG_MEAN, vec}, {DNNL_ARG_VARIANCE, vec},
                          {DNNL_ARG_WORKSPACE, ws}}),
          BoundPrimitive(dnnl::batch_normalization_forward(eval_pd),
                         {{DNNL_ARG_SRC, data}, {DNNL_ARG_DST, data}, {DNNL_ARG_SCALE, vec},
                          {DNNL_ARG_SHIFT, vec}, {DNNL_ARG_MEAN, vec}, {DNNL_ARG_VARIANCE, vec}}),
          BoundPrimitive(dnnl::batch_normalization_backward(bwd_pd),
                         {{DNNL_ARG_SRC, data}, {DNNL_ARG_DIFF_DST, data}, {DNNL_ARG_SCALE, vec},
                          {DNNL_ARG_SHIFT, vec}, {DNNL_ARG_MEAN, vec}, {DNNL_ARG_VARIANCE, vec},
                          {DNNL_ARG_WORKSPACE, ws}, {DNNL_ARG_DIFF_SRC, data},
                          {DNNL_ARG_DIFF_SCALE, vec}, {DNNL_ARG_DIFF_SHIFT, vec}}),
          std::vector<uint8_t>(ws.get_size())};
  return prims_.emplace(batch, std::move(p)).first->second;
}

void BatchNormReluOp::ForwardTrain(dnnl::stream& s, int batch, const float* src, float* dst) {
  Prims& p = Get(batch);
  p.fwd_train.Execute(s, {src, dst, gamma.value.data(), beta.value.data(), mean_.data(),
                          var_.data(), p.workspace.data()});
  // Running statistics as PyTorch keeps them: the unbiased batch variance.
  const float m = momentum_;
  const float unbias = batch > 1 ? static_cast<float>(batch) / (batch - 1) : 1.0f;
  for (int c = 0; c < width_; ++c) {
    running_mean[c] = (1 - m) * running_mean[c] + m * mean_[c];
    running_var[c] = (1 - m) * running_var[c] + m * var_[c] * unbias;
  }
}

void BatchNormReluOp::ForwardEval(dnnl::stream& s, int batch, const float* src, float* dst) {
  Get(batch).fwd_eval.Execute(s, {src, dst, gamma.value.data(), beta.value.data(),
                                  running_mean.data(), running_var.data()});
}

void BatchNormReluOp::Backward(dnnl::stream& s, int batch, const float* src,
                               const float* diff_dst, float* diff_src) {
  Prims& p = Get(batch);
  p.bwd.Execute(s, {src, diff_dst, gamma.value.data(), beta.value.data(), mean_.data(),
                    var_.data(), p.workspace.data(), diff_src, gamma.grad.data(),
                    beta.grad.data()});
}

}  // namespace anorand
