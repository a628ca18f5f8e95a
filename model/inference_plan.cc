#include "model/inference_plan.h"

#include <algorithm>
#include <cmath>
#include <omp.h>

#include <atomic>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "model/dnnl_util.h"

namespace anorand {

using dnnl::algorithm;
using dnnl::memory;

struct InferencePlan::Op {
  int src_buf = 0, src_col = 0, k = 0;
  int dst_buf = 0, dst_col = 0, n = 0;
  bool relu = false, sigmoid = false, accumulate = false, has_bias = true;
  std::vector<float> weights;  // n x k row-major (PyTorch layout), folded
  std::vector<float> bias;     // n
  struct PerClass {
    dnnl::matmul prim;
    memory weights;  // in the layout the primitive wants
  } cls[kNumClasses];
};

InferencePlan::~InferencePlan() = default;

namespace {

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

absl::StatusOr<std::unique_ptr<InferencePlan>> InferencePlan::Compile(const v1::Network& net,
                                                                     bool head_sigmoid) {
  return CompileGroup({&net}, head_sigmoid, kTileRows);
}

absl::StatusOr<std::unique_ptr<InferencePlan>> InferencePlan::CompileGroup(
    const std::vector<const v1::Network*>& nets, bool head_sigmoid, int max_tile_rows) {
  // oneDNN fixes a primitive's thread count when it is created (and Run
  // pins the caller to one thread too, see there). A plan runs one thread
  // per call (requests run in parallel instead; a fork/join per layer cost
  // a one-record request 10x), so its primitives are created with one
  // thread, whichever thread compiles.
  OneOmpThread one_thread;
  if (nets.empty()) return absl::InvalidArgumentError("no network to compile");
  static std::atomic<uint64_t> next_id{1};
  std::unique_ptr<InferencePlan> plan(new InferencePlan());
  plan->id_ = next_id.fetch_add(1);
  plan->groups_ = static_cast<int>(nets.size());
  plan->classes_ = 1;
  while (plan->classes_ < kNumClasses && kClassRows[plan->classes_] <= max_tile_rows) {
    ++plan->classes_;
  }
  BuildOps(*nets[0], head_sigmoid, plan.get());
  // Further members: the same ops with their own weights, laid out member
  // after member (each n x k, as the first member's).
  for (size_t g = 1; g < nets.size(); ++g) {
    InferencePlan other;
    BuildOps(*nets[g], head_sigmoid, &other);
    bool same = other.buffer_widths_ == plan->buffer_widths_ &&
                other.ops_.size() == plan->ops_.size();
    for (size_t i = 0; same && i < other.ops_.size(); ++i) {
      const Op& a = plan->ops_[i];
      const Op& b = other.ops_[i];
      same = a.src_buf == b.src_buf && a.src_col == b.src_col && a.dst_buf == b.dst_buf &&
             a.dst_col == b.dst_col && a.k == b.k && a.n == b.n && a.relu == b.relu &&
             a.sigmoid == b.sigmoid && a.accumulate == b.accumulate && a.has_bias == b.has_bias;
    }
    if (!same) {
      return absl::InvalidArgumentError(
          absl::StrCat("network ", g, " differs in shape from network 0: one plan cannot run both"));
    }
    for (size_t i = 0; i < other.ops_.size(); ++i) {
      Op& a = plan->ops_[i];
      a.weights.insert(a.weights.end(), other.ops_[i].weights.begin(), other.ops_[i].weights.end());
      a.bias.insert(a.bias.end(), other.ops_[i].bias.begin(), other.ops_[i].bias.end());
    }
  }
  auto& ops = plan->ops_;
  const int64_t G = plan->groups_;
  int64_t per_row = 0;
  for (int w : plan->buffer_widths_) per_row += w;
  plan->arena_floats_ = static_cast<size_t>(G * kClassRows[plan->classes_ - 1] * per_row);

  // Primitives for each shape class.
  auto& eng = CpuEngine();
  dnnl::stream stream(eng);
  try {
    for (Op& op : ops) {
      plan->macs_per_row_ += G * op.k * op.n;
      dnnl::post_ops po;
      if (op.accumulate) po.append_sum(1.f);
      // A group's per-member bias as a broadcast add post-op: as a matmul
      // bias ({G, 1, n}) oneDNN 2.6 only has a reference kernel for it.
      const bool bias_post_op = G > 1 && op.has_bias;
      if (bias_post_op) po.append_binary(algorithm::binary_add, plan->BiasDesc(op));
      if (op.relu) po.append_eltwise(1.f, algorithm::eltwise_relu, 0.f, 0.f);
      if (op.sigmoid) po.append_eltwise(1.f, algorithm::eltwise_logistic, 0.f, 0.f);
      dnnl::primitive_attr attr;
      attr.set_post_ops(po);
      attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
      const memory::desc user_w = plan->WeightsDesc(op, false);
      memory user_w_mem(user_w, eng, op.weights.data());
      const memory::desc bias_md = plan->BiasDesc(op);
      for (int c = 0; c < plan->classes_; ++c) {
        const memory::desc src = plan->ActivationDesc(c, op.src_buf, op.k);
        const memory::desc dst = plan->ActivationDesc(c, op.dst_buf, op.n);
        const memory::desc any_w = plan->WeightsDesc(op, true);
        auto desc = op.has_bias && !bias_post_op ? dnnl::matmul::desc(src, any_w, bias_md, dst)
                                : dnnl::matmul::desc(src, any_w, dst);
        dnnl::matmul::primitive_desc pd(desc, attr, eng);
        plan->scratch_bytes_ = std::max(plan->scratch_bytes_, pd.scratchpad_desc().get_size());
        Op::PerClass& pc = op.cls[c];
        pc.prim = dnnl::matmul(pd);
        if (pd.weights_desc() == user_w) {
          pc.weights = user_w_mem;
        } else {
          pc.weights = memory(pd.weights_desc(), eng);
          dnnl::reorder(user_w_mem, pc.weights).execute(stream, user_w_mem, pc.weights);
          stream.wait();
        }
      }
    }
  } catch (const dnnl::error& e) {
    return absl::InternalError(absl::StrCat("oneDNN could not compile the model: ", e.what()));
  }
  return plan;
}

// A member after another (groups_ > 1) in every buffer: {G, rows, width}.
memory::desc InferencePlan::ActivationDesc(int cls, int buf, int64_t cols) const {
  const int64_t m = kClassRows[cls], w = buffer_widths_[buf];
  if (groups_ == 1) return memory::desc({m, cols}, memory::data_type::f32, {w, 1});
  return memory::desc({groups_, m, cols}, memory::data_type::f32, {m * w, w, 1});
}

memory::desc InferencePlan::WeightsDesc(const Op& op, bool any) const {
  if (groups_ == 1) {
    return memory::desc({op.k, op.n}, memory::data_type::f32,
                        any ? memory::format_tag::any : memory::format_tag::ba);
  }
  if (any) return memory::desc({groups_, op.k, op.n}, memory::data_type::f32, memory::format_tag::any);
  return memory::desc({groups_, op.k, op.n}, memory::data_type::f32,
                      {static_cast<int64_t>(op.k) * op.n, 1, op.k});
}

memory::desc InferencePlan::BiasDesc(const Op& op) const {
  if (groups_ == 1) return memory::desc({1, op.n}, memory::data_type::f32, memory::format_tag::ab);
  return memory::desc({groups_, 1, op.n}, memory::data_type::f32, memory::format_tag::abc);
}

// Per thread, shared by every plan the thread runs (one Run at a time per
// thread): the activation arena, the scratchpad and the padding buffers,
// grown to the largest plan seen. Keeping them per plan made a thread that
// serves many plans (several ensembles, several versions) either hold
// ~0.5 MB per plan or re-create its state on every call.
struct ThreadBuffers {
  std::vector<float> arena;
  std::vector<uint8_t> scratch;
  std::vector<float> pad_x, pad_yhat, pad_xhat;  // a remainder padded to its class
};

ThreadBuffers& BuffersForThisThread() {
  thread_local ThreadBuffers buffers;
  return buffers;
}

template <typename T>
void GrowTo(std::vector<T>* v, size_t n) {
  if (v->size() < n) v->resize(n);
}

// Per thread and plan: the stream and, for the fixed shape classes, the
// argument maps of every op (their data handles are set per call).
struct InferencePlan::ThreadState {
  dnnl::stream stream{CpuEngine()};
  memory scratch_mem;
  std::vector<float*> ptrs;  // every buffer's place for the current chunk
  struct Bound {
    std::unordered_map<int, memory> args;
    memory src, dst;
  };
  std::vector<Bound> bound[kNumClasses];  // per class, per op
};

InferencePlan::ThreadState& InferencePlan::StateForThisThread() const {
  // The plans a thread has run, most recent last; the least recently used
  // goes when a 65th shows up (a few KB each).
  thread_local std::vector<std::pair<uint64_t, std::unique_ptr<ThreadState>>> cache;
  for (size_t i = 0; i < cache.size(); ++i) {
    if (cache[i].first != id_) continue;
    if (i + 1 != cache.size()) std::swap(cache[i], cache.back());
    return *cache.back().second;
  }
  if (cache.size() >= 64) cache.erase(cache.begin());
  auto state = std::make_unique<ThreadState>();
  state->ptrs.resize(buffer_widths_.size());
  auto& eng = CpuEngine();
  state->scratch_mem = memory({{static_cast<int64_t>(std::max<size_t>(scratch_bytes_, 1))},
                               memory::data_type::u8, memory::format_tag::a},
                              eng, static_cast<void*>(nullptr));
  for (int cls = 0; cls < classes_; ++cls) {
    for (const Op& op : ops_) {
      ThreadState::Bound b;
      b.src = memory(ActivationDesc(cls, op.src_buf, op.k), eng, static_cast<void*>(nullptr));
      b.dst = memory(ActivationDesc(cls, op.dst_buf, op.n), eng, static_cast<void*>(nullptr));
      b.args = {{DNNL_ARG_SRC, b.src},
                {DNNL_ARG_WEIGHTS, op.cls[cls].weights},
                {DNNL_ARG_DST, b.dst},
                {DNNL_ARG_SCRATCHPAD, state->scratch_mem}};
      if (op.has_bias) {
        // The bias post-op is the first binary post-op (index 1 after the
        // sum, 0 without).
        const int arg = groups_ == 1 ? DNNL_ARG_BIAS
                                     : (DNNL_ARG_ATTR_MULTIPLE_POST_OP(op.accumulate ? 1 : 0) |
                                        DNNL_ARG_SRC_1);
        b.args.emplace(arg, memory(BiasDesc(op), eng, const_cast<float*>(op.bias.data())));
      }
      state->bound[cls].push_back(std::move(b));
    }
  }
  cache.emplace_back(id_, std::move(state));
  return *cache.back().second;
}

void InferencePlan::ArenaPointers(int cls, float** p) const {
  size_t used = 0;
  float* arena = BuffersForThisThread().arena.data();
  for (size_t b = 0; b < buffer_widths_.size(); ++b) {
    p[b] = arena + used;
    used += static_cast<size_t>(groups_) * kClassRows[cls] * buffer_widths_[b];
  }
}

void InferencePlan::RunChunk(float* const* p, int cls, ThreadState& state) const {
  for (size_t i = 0; i < ops_.size(); ++i) {
    const Op& op = ops_[i];
    ThreadState::Bound& b = state.bound[cls][i];
    b.src.set_data_handle(p[op.src_buf] + op.src_col);
    b.dst.set_data_handle(p[op.dst_buf] + op.dst_col);
    op.cls[cls].prim.execute(state.stream, b.args);
  }
  state.stream.wait();
}

absl::Status InferencePlan::Run(const float* x, int64_t rows, float* y_hat, float* x_hat) const {
  // Creating the primitives with one thread is not enough: oneDNN's matmul
  // also reads the caller's OpenMP setting when it executes, and forked
  // every layer onto all cores from a server thread (the default is one
  // thread per core). In the server, a fork/join per layer per request, with
  // requests already running in parallel, cost a StreamScore of 256 records
  // about half of its CPU in thread wake-ups (docs/PERFORMANCE.md).
  OneOmpThread one_thread;
  try {
    ThreadState& state = StateForThisThread();
    ThreadBuffers& buf = BuffersForThisThread();
    const int tile = kClassRows[classes_ - 1];
    GrowTo(&buf.arena, arena_floats_);
    GrowTo(&buf.scratch, std::max<size_t>(scratch_bytes_, 1));
    GrowTo(&buf.pad_x, static_cast<size_t>(kTileRows) * d_);
    GrowTo(&buf.pad_xhat, static_cast<size_t>(kTileRows) * d_);
    GrowTo(&buf.pad_yhat, static_cast<size_t>(kTileRows));
    state.scratch_mem.set_data_handle(buf.scratch.data());
    float** p = state.ptrs.data();
    for (int64_t start = 0; start < rows; start += tile) {
      const int m = static_cast<int>(std::min<int64_t>(tile, rows - start));
      int cls = 0;
      while (kClassRows[cls] < m) ++cls;
      const int64_t cm = kClassRows[cls];
      ArenaPointers(cls, p);
      if (groups_ > 1) {
        // Member g's rows [start, start + m) into the arena's {G, cm, d}
        // input, zero rows after them; the outputs back the same way.
        for (int64_t g = 0; g < groups_; ++g) {
          const float* from = x + (g * rows + start) * d_;
          float* to = p[0] + g * cm * d_;
          std::copy(from, from + static_cast<int64_t>(m) * d_, to);
          std::fill(to + static_cast<int64_t>(m) * d_, to + cm * d_, 0.0f);
        }
        RunChunk(p, cls, state);
        for (int64_t g = 0; g < groups_; ++g) {
          const float* yh = p[yhat_buffer_] + g * cm;
          std::copy(yh, yh + m, y_hat + g * rows + start);
          const float* xh = p[xhat_buffer_] + g * cm * d_;
          std::copy(xh, xh + static_cast<int64_t>(m) * d_, x_hat + (g * rows + start) * d_);
        }
        continue;
      }
      const float* xs = x + start * d_;
      if (cm == m) {
        p[0] = const_cast<float*>(xs);
        p[yhat_buffer_] = y_hat + start;
        p[xhat_buffer_] = x_hat + start * d_;
        RunChunk(p, cls, state);
        continue;
      }
      const size_t n = static_cast<size_t>(m) * d_;
      std::copy(xs, xs + n, buf.pad_x.begin());
      std::fill(buf.pad_x.begin() + n, buf.pad_x.begin() + kClassRows[cls] * d_, 0.0f);
      p[0] = buf.pad_x.data();
      p[yhat_buffer_] = buf.pad_yhat.data();
      p[xhat_buffer_] = buf.pad_xhat.data();
      RunChunk(p, cls, state);
      std::copy(buf.pad_yhat.begin(), buf.pad_yhat.begin() + m, y_hat + start);
      std::copy(buf.pad_xhat.begin(), buf.pad_xhat.begin() + n, x_hat + start * d_);
    }
  } catch (const dnnl::error& e) {
    return absl::InternalError(absl::StrCat("oneDNN forward pass failed: ", e.what()));
  }
  return absl::OkStatus();
}

}  // namespace anorand
