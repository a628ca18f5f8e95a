#include "model/network.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "model/dnnl_util.h"

namespace anorand {
namespace {

double Softplus(double v) { return std::max(v, 0.0) + std::log1p(std::exp(-std::abs(v))); }
double Sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }

void InitUniform(Param& p, int fan_in, Rng& rng) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  for (float& v : p.value) v = static_cast<float>((2.0 * rng.Uniform() - 1.0) * bound);
}

void CopyFloats(const google::protobuf::RepeatedField<float>& from, std::vector<float>* to) {
  to->assign(from.begin(), from.end());
}

absl::Status LoadDense(const v1::DenseLayer& p, DenseOp* op, const char* where) {
  if (p.in_features() != op->in() || p.out_features() != op->out() ||
      p.weight_size() != op->in() * op->out() || p.bias_size() != op->out()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": dense layer shape mismatch"));
  }
  CopyFloats(p.weight(), &op->weight.value);
  CopyFloats(p.bias(), &op->bias.value);
  return absl::OkStatus();
}

void SaveDense(const DenseOp& op, v1::DenseLayer* p) {
  p->set_in_features(op.in());
  p->set_out_features(op.out());
  p->mutable_weight()->Add(op.weight.value.begin(), op.weight.value.end());
  p->mutable_bias()->Add(op.bias.value.begin(), op.bias.value.end());
}

}  // namespace

TrainingNetwork::TrainingNetwork(const v1::TrainingParams& params, int input_features,
                                 int max_batch)
    : d_(input_features),
      max_batch_(max_batch),
      loss_weight_(params.loss_weight()),
      dropout_(static_cast<float>(params.dropout())),
      stop_rec_grad_(params.stop_reconstruction_gradient()),
      trim_(params.trim_fraction()),
      bn_momentum_(static_cast<float>(params.batch_norm_momentum())),
      stream_(CpuEngine()) {
  Build(params);
}

TrainingNetwork::TrainingNetwork(const v1::TrainingParams& params, int input_features,
                                 int max_batch, Rng& rng)
    : TrainingNetwork(params, input_features, max_batch) {
  InitWeights(rng);
}

void TrainingNetwork::Build(const v1::TrainingParams& params) {
  auto make_block = [&](Block& block, int in, const google::protobuf::RepeatedField<int32_t>& w) {
    for (int i = 0; i < w.size(); ++i) {
      auto h = std::make_unique<Hidden>(in, w[i], bn_eps_, bn_momentum_);
      const size_t n = static_cast<size_t>(max_batch_) * w[i];
      h->pre.resize(n);
      h->act.resize(n);
      h->d_act.resize(n);
      h->d_pre.resize(n);
      h->dropout_after = dropout_ > 0 && i + 1 < w.size();
      if (h->dropout_after) h->mask.resize(n);
      block.push_back(std::move(h));
      in = w[i];
    }
  };
  make_block(nd_, d_, params.noise_detector_widths());
  make_block(enc_, d_, params.encoder_widths());
  const int l1 = nd_.back()->dense.out(), l0 = enc_.back()->dense.out();
  make_block(dec_, l0 + l1, params.decoder_widths());
  head_ = std::make_unique<DenseOp>(l1, 1);
  recon_ = std::make_unique<DenseOp>(dec_.back()->dense.out(), d_);
  const size_t b = max_batch_;
  logit_.resize(b);
  d_logit_.resize(b);
  xhat_.resize(b * d_);
  d_xhat_.resize(b * d_);
  zc_.resize(b * (l0 + l1));
  d_zc_.resize(b * (l0 + l1));
}

void TrainingNetwork::InitWeights(Rng& rng) {
  for (Block* block : {&nd_, &enc_, &dec_}) {
    for (auto& h : *block) {
      InitUniform(h->dense.weight, h->dense.in(), rng);
      InitUniform(h->dense.bias, h->dense.in(), rng);
    }
  }
  for (DenseOp* op : {head_.get(), recon_.get()}) {
    InitUniform(op->weight, op->in(), rng);
    InitUniform(op->bias, op->in(), rng);
  }
}

std::vector<Param*> TrainingNetwork::Params() {
  std::vector<Param*> out;
  for (Block* block : {&nd_, &enc_, &dec_}) {
    for (auto& h : *block) {
      out.insert(out.end(), {&h->dense.weight, &h->dense.bias, &h->bn.gamma, &h->bn.beta});
    }
  }
  out.insert(out.end(), {&head_->weight, &head_->bias, &recon_->weight, &recon_->bias});
  return out;
}

void TrainingNetwork::BlockForward(Block& block, const float* x, int batch, bool train, Rng* rng) {
  const float* in = x;
  const float keep_scale = 1.0f / (1.0f - dropout_);
  for (auto& h : block) {
    h->dense.Forward(stream_, batch, in, h->pre.data());
    if (train) {
      h->bn.ForwardTrain(stream_, batch, h->pre.data(), h->act.data());
      if (h->dropout_after) {
        // 16 random bits per unit (drop probability resolved to 1/65536),
        // four units per draw: this loop ran a quarter of the epoch with
        // one double draw per unit.
        const size_t n = static_cast<size_t>(batch) * h->dense.out();
        const uint32_t cut = static_cast<uint32_t>(dropout_ * 65536.0f + 0.5f);
        uint64_t bits = 0;
        for (size_t i = 0; i < n; ++i) {
          if ((i & 3) == 0) bits = rng->Next();
          const uint32_t u = static_cast<uint32_t>(bits & 0xffff);
          bits >>= 16;
          h->mask[i] = u < cut ? 0.0f : keep_scale;
          h->act[i] *= h->mask[i];
        }
      }
    } else {
      h->bn.ForwardEval(stream_, batch, h->pre.data(), h->act.data());
    }
    in = h->act.data();
  }
}

void TrainingNetwork::Forward(const float* x, int batch, bool train, Rng* rng) {
  BlockForward(nd_, x, batch, train, rng);
  BlockForward(enc_, x, batch, train, rng);
  const int l1 = nd_.back()->dense.out(), l0 = enc_.back()->dense.out();
  const float* z1 = nd_.back()->act.data();
  const float* z0 = enc_.back()->act.data();
  for (int r = 0; r < batch; ++r) {
    std::memcpy(&zc_[r * (l0 + l1)], z0 + r * l0, l0 * sizeof(float));
    std::memcpy(&zc_[r * (l0 + l1) + l0], z1 + r * l1, l1 * sizeof(float));
  }
  head_->Forward(stream_, batch, z1, logit_.data());
  BlockForward(dec_, zc_.data(), batch, train, rng);
  recon_->Forward(stream_, batch, dec_.back()->act.data(), xhat_.data());
}

LossParts TrainingNetwork::Loss(const float* x, const float* y, int batch, bool want_grad,
                                double* bce_sum, double* rec_sum, int64_t* normal_rows) {
  double bce = 0, rec = 0;
  int64_t n0 = 0;
  row_err_.assign(batch, -1.0);  // -1: not in R (label 1, or trimmed)
  for (int r = 0; r < batch; ++r) {
    const double l = logit_[r];
    bce += Softplus(l) - l * y[r];
    if (y[r] < 0.5f) {
      double e = 0;
      for (int c = 0; c < d_; ++c) {
        const double diff = xhat_[r * d_ + c] - x[r * d_ + c];
        e += diff * diff;
      }
      row_err_[r] = e / d_;
      ++n0;
    }
  }
  if (trim_ > 0 && n0 > 1) {
    // Trimmed R: the largest errors among the label-0 rows drop out.
    const int64_t cut = static_cast<int64_t>(std::floor(trim_ * n0));
    if (cut > 0) {
      std::vector<int> idx;
      for (int r = 0; r < batch; ++r)
        if (row_err_[r] >= 0) idx.push_back(r);
      std::nth_element(idx.begin(), idx.begin() + cut, idx.end(), [&](int a, int b) {
        return row_err_[a] != row_err_[b] ? row_err_[a] > row_err_[b] : a < b;
      });
      for (int64_t i = 0; i < cut; ++i) row_err_[idx[i]] = -1.0;
      n0 -= cut;
    }
  }
  for (int r = 0; r < batch; ++r)
    if (row_err_[r] >= 0) rec += row_err_[r];
  if (bce_sum) *bce_sum += bce;
  if (rec_sum) *rec_sum += rec;
  if (normal_rows) *normal_rows += n0;
  LossParts parts;
  parts.classification = bce / batch;
  parts.reconstruction = n0 > 0 ? rec / n0 : 0.0;
  parts.total = loss_weight_ * parts.classification + (1 - loss_weight_) * parts.reconstruction;
  if (want_grad) {
    const double w = loss_weight_;
    for (int r = 0; r < batch; ++r) {
      d_logit_[r] = static_cast<float>(w * (Sigmoid(logit_[r]) - y[r]) / batch);
      const double g = row_err_[r] >= 0 && n0 > 0 ? (1 - w) * 2.0 / (static_cast<double>(n0) * d_) : 0;
      for (int c = 0; c < d_; ++c) {
        d_xhat_[r * d_ + c] = static_cast<float>(g * (xhat_[r * d_ + c] - x[r * d_ + c]));
      }
    }
  }
  return parts;
}

void TrainingNetwork::BlockBackward(Block& block, const float* x, int batch, float* d_input) {
  // On entry block.back()->d_act holds the gradient at the block's output.
  for (int i = static_cast<int>(block.size()) - 1; i >= 0; --i) {
    Hidden& h = *block[i];
    const size_t n = static_cast<size_t>(batch) * h.dense.out();
    if (h.dropout_after) {
      for (size_t k = 0; k < n; ++k) h.d_act[k] *= h.mask[k];
    }
    h.bn.Backward(stream_, batch, h.pre.data(), h.d_act.data(), h.d_pre.data());
    const float* in = i == 0 ? x : block[i - 1]->act.data();
    h.dense.BackwardWeights(stream_, batch, in, h.d_pre.data());
    float* d_in = i == 0 ? d_input : block[i - 1]->d_act.data();
    if (d_in != nullptr) h.dense.BackwardData(stream_, batch, h.d_pre.data(), d_in);
  }
}

LossParts TrainingNetwork::ForwardBackward(const float* x, const float* y, int batch,
                                           Rng& dropout_rng) {
  Forward(x, batch, /*train=*/true, &dropout_rng);
  LossParts parts = Loss(x, y, batch, /*want_grad=*/true, nullptr, nullptr, nullptr);

  Hidden& dec_last = *dec_.back();
  recon_->BackwardWeights(stream_, batch, dec_last.act.data(), d_xhat_.data());
  recon_->BackwardData(stream_, batch, d_xhat_.data(), dec_last.d_act.data());
  BlockBackward(dec_, zc_.data(), batch, d_zc_.data());

  Hidden& nd_last = *nd_.back();
  Hidden& enc_last = *enc_.back();
  const int l1 = nd_last.dense.out(), l0 = enc_last.dense.out();
  head_->BackwardWeights(stream_, batch, nd_last.act.data(), d_logit_.data());
  head_->BackwardData(stream_, batch, d_logit_.data(), nd_last.d_act.data());
  for (int r = 0; r < batch; ++r) {
    const float* dz = &d_zc_[r * (l0 + l1)];
    std::memcpy(&enc_last.d_act[r * l0], dz, l0 * sizeof(float));
    if (!stop_rec_grad_) {
      float* d1 = &nd_last.d_act[r * l1];
      for (int c = 0; c < l1; ++c) d1[c] += dz[l0 + c];
    }
  }
  BlockBackward(nd_, x, batch, nullptr);
  BlockBackward(enc_, x, batch, nullptr);
  return parts;
}

void TrainingNetwork::ForwardEval(const float* x, int batch, float* y_hat, float* x_hat) {
  Forward(x, batch, /*train=*/false, nullptr);
  if (y_hat) {
    for (int r = 0; r < batch; ++r) y_hat[r] = static_cast<float>(Sigmoid(logit_[r]));
  }
  if (x_hat) std::memcpy(x_hat, xhat_.data(), sizeof(float) * batch * d_);
}

LossParts TrainingNetwork::EvalLoss(const float* x, const float* y, int64_t rows) {
  double bce = 0, rec = 0;
  int64_t n0 = 0;
  for (int64_t start = 0; start < rows; start += max_batch_) {
    const int b = static_cast<int>(std::min<int64_t>(max_batch_, rows - start));
    Forward(x + start * d_, b, /*train=*/false, nullptr);
    Loss(x + start * d_, y + start, b, /*want_grad=*/false, &bce, &rec, &n0);
  }
  LossParts parts;
  if (rows == 0) return parts;
  parts.classification = bce / rows;
  parts.reconstruction = n0 > 0 ? rec / n0 : 0.0;
  parts.total = loss_weight_ * parts.classification + (1 - loss_weight_) * parts.reconstruction;
  return parts;
}

v1::Network TrainingNetwork::ToProto() const {
  v1::Network net;
  net.set_input_features(d_);
  auto save_block = [](const Block& block, google::protobuf::RepeatedPtrField<v1::HiddenLayer>* out) {
    for (const auto& h : block) {
      v1::HiddenLayer* layer = out->Add();
      SaveDense(h->dense, layer->mutable_dense());
      v1::BatchNorm* bn = layer->mutable_batch_norm();
      bn->mutable_gamma()->Add(h->bn.gamma.value.begin(), h->bn.gamma.value.end());
      bn->mutable_beta()->Add(h->bn.beta.value.begin(), h->bn.beta.value.end());
      bn->mutable_running_mean()->Add(h->bn.running_mean.begin(), h->bn.running_mean.end());
      bn->mutable_running_var()->Add(h->bn.running_var.begin(), h->bn.running_var.end());
      bn->set_eps(h->bn.eps());
    }
  };
  save_block(nd_, net.mutable_noise_detector());
  save_block(enc_, net.mutable_encoder());
  save_block(dec_, net.mutable_decoder());
  SaveDense(*head_, net.mutable_noise_head());
  SaveDense(*recon_, net.mutable_reconstruction());
  return net;
}

absl::StatusOr<std::unique_ptr<TrainingNetwork>> TrainingNetwork::FromProto(
    const v1::Network& net, const v1::TrainingParams& params, int max_batch) {
  // The widths come from the stored layers, not from params.
  v1::TrainingParams p = params;
  p.clear_noise_detector_widths();
  p.clear_encoder_widths();
  p.clear_decoder_widths();
  for (const auto& h : net.noise_detector()) p.add_noise_detector_widths(h.dense().out_features());
  for (const auto& h : net.encoder()) p.add_encoder_widths(h.dense().out_features());
  for (const auto& h : net.decoder()) p.add_decoder_widths(h.dense().out_features());
  if (p.noise_detector_widths().empty() || p.encoder_widths().empty() ||
      p.decoder_widths().empty() || net.input_features() < 1) {
    return absl::InvalidArgumentError("network has an empty block or no input width");
  }
  std::unique_ptr<TrainingNetwork> tn(new TrainingNetwork(p, net.input_features(), max_batch));
  auto load_block = [](const google::protobuf::RepeatedPtrField<v1::HiddenLayer>& layers,
                       Block& block, const char* name) -> absl::Status {
    for (int i = 0; i < layers.size(); ++i) {
      const auto& l = layers[i];
      Hidden& h = *block[i];
      if (absl::Status s = LoadDense(l.dense(), &h.dense, name); !s.ok()) return s;
      const auto& bn = l.batch_norm();
      const int w = h.bn.width();
      if (bn.gamma_size() != w || bn.beta_size() != w || bn.running_mean_size() != w ||
          bn.running_var_size() != w) {
        return absl::InvalidArgumentError(absl::StrCat(name, ": batch norm width mismatch"));
      }
      CopyFloats(bn.gamma(), &h.bn.gamma.value);
      CopyFloats(bn.beta(), &h.bn.beta.value);
      CopyFloats(bn.running_mean(), &h.bn.running_mean);
      CopyFloats(bn.running_var(), &h.bn.running_var);
    }
    return absl::OkStatus();
  };
  for (auto [layers, block, name] :
       {std::make_tuple(&net.noise_detector(), &tn->nd_, "noise_detector"),
        std::make_tuple(&net.encoder(), &tn->enc_, "encoder"),
        std::make_tuple(&net.decoder(), &tn->dec_, "decoder")}) {
    if (absl::Status s = load_block(*layers, *block, name); !s.ok()) return s;
  }
  if (absl::Status s = LoadDense(net.noise_head(), tn->head_.get(), "noise_head"); !s.ok()) return s;
  if (absl::Status s = LoadDense(net.reconstruction(), tn->recon_.get(), "reconstruction");
      !s.ok())
    return s;
  return tn;
}

}  // namespace anorand
