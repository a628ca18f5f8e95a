// File: network.h
//
// The AnoRand training graph (METHOD.md sections 3 and 4) on oneDNN:
// noise-detection block -> z1 -> sigmoid head (y_hat); encoder -> z0;
// decoder(concat(z0, z1)) -> x_hat; loss L = w BCE(y, y_hat) + (1 - w) R,
// R the mean squared reconstruction error over rows with y = 0.
//
// Train mode uses batch statistics and dropout; eval mode uses running
// statistics and no dropout (what the compiled plan reproduces).
// Not thread-safe; one network per training job.
#ifndef ANORAND_MODEL_NETWORK_H_
#define ANORAND_MODEL_NETWORK_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "anorand/v1/model.pb.h"
#include "model/layers.h"
#include "model/rng.h"

namespace anorand {

struct LossParts {
  double total = 0;           // w * classification + (1 - w) * reconstruction
  double classification = 0;  // mean BCE
  double reconstruction = 0;  // mean over y = 0 rows of the per-row MSE
};

class TrainingNetwork {
 public:
  // Widths, dropout, batch norm settings and loss weight come from the
  // resolved `params`; weights are drawn like PyTorch's nn.Linear default
  // (uniform in +-1/sqrt(fan_in)) from `rng`. max_batch bounds every call.
  TrainingNetwork(const v1::TrainingParams& params, int input_features, int max_batch, Rng& rng);

  // Rebuilds a network from a stored one (eval use, or further training).
  static absl::StatusOr<std::unique_ptr<TrainingNetwork>> FromProto(
      const v1::Network& net, const v1::TrainingParams& params, int max_batch);
  v1::Network ToProto() const;

  // Train-mode forward and backward on `batch` rows: fills every Param's
  // grad and returns the batch loss. y holds 0/1 labels.
  LossParts ForwardBackward(const float* x, const float* y, int batch, Rng& dropout_rng);

  // Eval-mode forward; y_hat: batch values, x_hat: batch x input_features.
  // Either output may be null.
  void ForwardEval(const float* x, int batch, float* y_hat, float* x_hat);

  // Eval-mode loss over `rows` rows, in chunks of max_batch.
  LossParts EvalLoss(const float* x, const float* y, int64_t rows);

  std::vector<Param*> Params();
  int input_features() const { return d_; }
  int max_batch() const { return max_batch_; }

 private:
  struct Hidden {
    Hidden(int in, int out, float eps, float momentum) : dense(in, out), bn(out, eps, momentum) {}
    DenseOp dense;
    BatchNormReluOp bn;
    std::vector<float> pre, act, mask, d_act, d_pre;
    bool dropout_after = false;
  };
  using Block = std::vector<std::unique_ptr<Hidden>>;

  TrainingNetwork(const v1::TrainingParams& params, int input_features, int max_batch);
  void Build(const v1::TrainingParams& params);
  void InitWeights(Rng& rng);
  void BlockForward(Block& block, const float* x, int batch, bool train, Rng* rng);
  void BlockBackward(Block& block, const float* x, int batch, float* d_input);
  void Forward(const float* x, int batch, bool train, Rng* rng);
  LossParts Loss(const float* x, const float* y, int batch, bool want_grad, double* bce_sum,
                 double* rec_sum, int64_t* normal_rows);

  int d_, max_batch_;
  double loss_weight_;
  float dropout_;
  bool stop_rec_grad_;
  double trim_ = 0;  // trimmed share of label-0 rows in R (trim_fraction)
  std::vector<double> row_err_;
  float bn_eps_ = 1e-5f, bn_momentum_;
  Block nd_, enc_, dec_;
  std::unique_ptr<DenseOp> head_, recon_;
  std::vector<float> logit_, d_logit_, xhat_, d_xhat_, zc_, d_zc_;
  dnnl::stream stream_;
};

}  // namespace anorand

#endif  // ANORAND_MODEL_NETWORK_H_
