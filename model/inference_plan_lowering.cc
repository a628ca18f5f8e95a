// Lowering: a stored network becomes the plan's ops and buffers, with
// BatchNorm folded into the dense layer before it, both blocks' first
// layers as one product and the decoder's concat as two products summed.
#include <cmath>
#include <utility>
#include <vector>

#include "model/inference_plan.h"
#include "model/inference_plan_internal.h"

namespace anorand {
namespace {

struct Folded {
  std::vector<float> w, b;  // out x in, out
  int in = 0, out = 0;
};

Folded FoldHidden(const v1::HiddenLayer& h) {
  const auto& d = h.dense();
  const auto& bn = h.batch_norm();
  Folded f;
  f.in = d.in_features();
  f.out = d.out_features();
  f.w.resize(static_cast<size_t>(f.in) * f.out);
  f.b.resize(f.out);
  for (int o = 0; o < f.out; ++o) {
    const double s = bn.gamma(o) / std::sqrt(static_cast<double>(bn.running_var(o)) + bn.eps());
    for (int i = 0; i < f.in; ++i) f.w[o * f.in + i] = static_cast<float>(d.weight(o * f.in + i) * s);
    f.b[o] = static_cast<float>((d.bias(o) - bn.running_mean(o)) * s + bn.beta(o));
  }
  return f;
}

Folded Plain(const v1::DenseLayer& d) {
  Folded f;
  f.in = d.in_features();
  f.out = d.out_features();
  f.w.assign(d.weight().begin(), d.weight().end());
  f.b.assign(d.bias().begin(), d.bias().end());
  return f;
}

// Columns [from, from + count) of an out x in matrix.
std::vector<float> Columns(const Folded& f, int from, int count) {
  std::vector<float> w(static_cast<size_t>(f.out) * count);
  for (int o = 0; o < f.out; ++o)
    for (int i = 0; i < count; ++i) w[o * count + i] = f.w[o * f.in + from + i];
  return w;
}

}  // namespace

// The ops and buffer widths of one network's forward pass.
void InferencePlan::BuildOps(const v1::Network& net, bool head_sigmoid, InferencePlan* plan) {
  const int d = net.input_features();
  plan->d_ = d;
  auto& widths = plan->buffer_widths_;
  widths.push_back(d);  // buffer 0: the input
  auto new_buffer = [&widths](int w) {
    widths.push_back(w);
    return static_cast<int>(widths.size()) - 1;
  };
  auto& ops = plan->ops_;
  auto add_op = [&ops](int src_buf, int src_col, int dst_buf, int dst_col, std::vector<float> w,
                       std::vector<float> b, int k, int n) -> Op& {
    ops.emplace_back();
    Op& op = ops.back();
    op.src_buf = src_buf;
    op.src_col = src_col;
    op.dst_buf = dst_buf;
    op.dst_col = dst_col;
    op.k = k;
    op.n = n;
    op.weights = std::move(w);
    op.bias = std::move(b);
    op.has_bias = !op.bias.empty();
    return op;
  };

  // First layers of both blocks as one product: output [enc1 | nd1].
  Folded e1 = FoldHidden(net.encoder(0));
  Folded n1 = FoldHidden(net.noise_detector(0));
  std::vector<float> w1 = e1.w, b1 = e1.b;
  w1.insert(w1.end(), n1.w.begin(), n1.w.end());
  b1.insert(b1.end(), n1.b.begin(), n1.b.end());
  const int h1 = new_buffer(e1.out + n1.out);
  add_op(0, 0, h1, 0, std::move(w1), std::move(b1), d, e1.out + n1.out).relu = true;

  struct Slot {
    int buf, col, width;
  };
  auto run_block = [&](const google::protobuf::RepeatedPtrField<v1::HiddenLayer>& layers,
                       Slot in) {
    for (int i = 1; i < layers.size(); ++i) {
      Folded f = FoldHidden(layers[i]);
      const int out = new_buffer(f.out);
      add_op(in.buf, in.col, out, 0, std::move(f.w), std::move(f.b), f.in, f.out).relu = true;
      in = Slot{out, 0, f.out};
    }
    return in;
  };
  const Slot z0 = run_block(net.encoder(), Slot{h1, 0, e1.out});
  const Slot z1 = run_block(net.noise_detector(), Slot{h1, e1.out, n1.out});

  plan->yhat_buffer_ = new_buffer(1);
  Folded head = Plain(net.noise_head());
  add_op(z1.buf, z1.col, plan->yhat_buffer_, 0, std::move(head.w), std::move(head.b), z1.width, 1)
      .sigmoid = head_sigmoid;

  // Decoder layer 1 on concat(z0, z1): z0 W_a^T + b, then += z1 W_b^T, relu.
  Folded dec1 = FoldHidden(net.decoder(0));
  const int dbuf = new_buffer(dec1.out);
  add_op(z0.buf, z0.col, dbuf, 0, Columns(dec1, 0, z0.width), dec1.b, z0.width, dec1.out);
  Op& second = add_op(z1.buf, z1.col, dbuf, 0, Columns(dec1, z0.width, z1.width), {}, z1.width,
                      dec1.out);
  second.accumulate = true;
  second.relu = true;
  const Slot dec_out = run_block(net.decoder(), Slot{dbuf, 0, dec1.out});

  plan->xhat_buffer_ = new_buffer(d);
  Folded rec = Plain(net.reconstruction());
  add_op(dec_out.buf, dec_out.col, plan->xhat_buffer_, 0, std::move(rec.w), std::move(rec.b),
         dec_out.width, d);
}

}  // namespace anorand
