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
  const auto src = MatDesc(batch, in_);
  const auto dst = MatDesc(batch, out_);
  const auto w = MatDesc(out_, in_);  // oi == ab
  const auto b = VecDesc(out_);
  auto& eng = CpuEngine();
  dnnl::inner_product_forward::primitive_desc fwd_pd(
      dnnl::inner_product_forward::desc(prop_kind::forward_training, src, w, b, dst), eng);
  dnnl::inner_product_backward_data::primitive_desc bd_pd(
      dnnl::inner_product_backward_data::desc(src, w, dst), eng, fwd_pd);
  dnnl::inner_product_backward_weights::primitive_desc bw_pd(
      dnnl::inner_product_backward_weights::desc(src, w, b, dst), eng, fwd_pd);
  Prims p{dnnl::inner_product_forward(fwd_pd), dnnl::inner_product_backward_data(bd_pd),
          dnnl::inner_product_backward_weights(bw_pd)};
  return prims_.emplace(batch, std::move(p)).first->second;
}

void DenseOp::Forward(dnnl::stream& s, int batch, const float* src, float* dst) {
  Prims& p = Get(batch);
  p.fwd.execute(s, {{DNNL_ARG_SRC, Wrap(MatDesc(batch, in_), src)},
                    {DNNL_ARG_WEIGHTS, Wrap(MatDesc(out_, in_), weight.value.data())},
                    {DNNL_ARG_BIAS, Wrap(VecDesc(out_), bias.value.data())},
                    {DNNL_ARG_DST, Wrap(MatDesc(batch, out_), dst)}});
  s.wait();
}

void DenseOp::BackwardData(dnnl::stream& s, int batch, const float* diff_dst, float* diff_src) {
  Prims& p = Get(batch);
  p.bwd_data.execute(s, {{DNNL_ARG_DIFF_DST, Wrap(MatDesc(batch, out_), diff_dst)},
                         {DNNL_ARG_WEIGHTS, Wrap(MatDesc(out_, in_), weight.value.data())},
                         {DNNL_ARG_DIFF_SRC, Wrap(MatDesc(batch, in_), diff_src)}});
  s.wait();
}

void DenseOp::BackwardWeights(dnnl::stream& s, int batch, const float* src,
                              const float* diff_dst) {
  Prims& p = Get(batch);
  p.bwd_weights.execute(s, {{DNNL_ARG_SRC, Wrap(MatDesc(batch, in_), src)},
                            {DNNL_ARG_DIFF_DST, Wrap(MatDesc(batch, out_), diff_dst)},
                            {DNNL_ARG_DIFF_WEIGHTS, Wrap(MatDesc(out_, in_), weight.grad.data())},
                            {DNNL_ARG_DIFF_BIAS, Wrap(VecDesc(out_), bias.grad.data())}});
  s.wait();
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

BatchNormReluOp::Prims& BatchNormReluOp::Get(int batch) {
  auto it = prims_.find(batch);
  if (it != prims_.end()) return it->second;
  const auto data = MatDesc(batch, width_);
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
  Prims p{dnnl::batch_normalization_forward(train_pd), dnnl::batch_normalization_forward(eval_pd),
          dnnl::batch_normalization_backward(bwd_pd),
          std::vector<uint8_t>(train_pd.workspace_desc().get_size()), train_pd.workspace_desc()};
  return prims_.emplace(batch, std::move(p)).first->second;
}

void BatchNormReluOp::ForwardTrain(dnnl::stream& s, int batch, const float* src, float* dst) {
  Prims& p = Get(batch);
  const auto data = MatDesc(batch, width_);
  const auto vec = VecDesc(width_);
  p.fwd_train.execute(
      s, {{DNNL_ARG_SRC, Wrap(data, src)},
          {DNNL_ARG_DST, Wrap(data, dst)},
          {DNNL_ARG_SCALE, Wrap(vec, gamma.value.data())},
          {DNNL_ARG_SHIFT, Wrap(vec, beta.value.data())},
          {DNNL_ARG_MEAN, Wrap(vec, mean_.data())},
          {DNNL_ARG_VARIANCE, Wrap(vec, var_.data())},
          {DNNL_ARG_WORKSPACE, dnnl::memory(p.workspace_md, CpuEngine(), p.workspace.data())}});
  s.wait();
  // Running statistics as PyTorch keeps them: the unbiased batch variance.
  const float m = momentum_;
  const float unbias = batch > 1 ? static_cast<float>(batch) / (batch - 1) : 1.0f;
  for (int c = 0; c < width_; ++c) {
    running_mean[c] = (1 - m) * running_mean[c] + m * mean_[c];
    running_var[c] = (1 - m) * running_var[c] + m * var_[c] * unbias;
  }
}

void BatchNormReluOp::ForwardEval(dnnl::stream& s, int batch, const float* src, float* dst) {
  Prims& p = Get(batch);
  const auto data = MatDesc(batch, width_);
  const auto vec = VecDesc(width_);
  p.fwd_eval.execute(s, {{DNNL_ARG_SRC, Wrap(data, src)},
                         {DNNL_ARG_DST, Wrap(data, dst)},
                         {DNNL_ARG_SCALE, Wrap(vec, gamma.value.data())},
                         {DNNL_ARG_SHIFT, Wrap(vec, beta.value.data())},
                         {DNNL_ARG_MEAN, Wrap(vec, running_mean.data())},
                         {DNNL_ARG_VARIANCE, Wrap(vec, running_var.data())}});
  s.wait();
}

void BatchNormReluOp::Backward(dnnl::stream& s, int batch, const float* src,
                               const float* diff_dst, float* diff_src) {
  Prims& p = Get(batch);
  const auto data = MatDesc(batch, width_);
  const auto vec = VecDesc(width_);
  p.bwd.execute(
      s, {{DNNL_ARG_SRC, Wrap(data, src)},
          {DNNL_ARG_DIFF_DST, Wrap(data, diff_dst)},
          {DNNL_ARG_SCALE, Wrap(vec, gamma.value.data())},
          {DNNL_ARG_SHIFT, Wrap(vec, beta.value.data())},
          {DNNL_ARG_MEAN, Wrap(vec, mean_.data())},
          {DNNL_ARG_VARIANCE, Wrap(vec, var_.data())},
          {DNNL_ARG_WORKSPACE, dnnl::memory(p.workspace_md, CpuEngine(), p.workspace.data())},
          {DNNL_ARG_DIFF_SRC, Wrap(data, diff_src)},
          {DNNL_ARG_DIFF_SCALE, Wrap(vec, gamma.grad.data())},
          {DNNL_ARG_DIFF_SHIFT, Wrap(vec, beta.grad.data())}});
  s.wait();
}

}  // namespace anorand
