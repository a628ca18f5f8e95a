// Compile: the ops of one network (or of an ensemble's members side by
// side) become one oneDNN matmul primitive per op and shape class, with
// weights reordered once into the layout each primitive wants.
#include <algorithm>
#include <atomic>

#include "absl/strings/str_cat.h"
#include "model/dnnl_util.h"
#include "model/inference_plan.h"
#include "model/inference_plan_internal.h"

namespace anorand {

using dnnl::algorithm;
using dnnl::memory;
using inference_plan_internal::OneOmpThread;

InferencePlan::~InferencePlan() = default;

absl::StatusOr<std::unique_ptr<InferencePlan>> InferencePlan::Compile(const v1::Network& net,
                                                                     bool head_sigmoid) {
  return CompileGroup({&net}, head_sigmoid, kTileRows);
}

absl::StatusOr<std::unique_ptr<InferencePlan>> InferencePlan::CompileGroup(
    const std::vector<const v1::Network*>& nets, bool head_sigmoid, int max_tile_rows) {
  // oneDNN fixes a primitive's thread count when it is created (and Run
  // pins the caller to one thread too, see there). A plan runs one thread
  // per call (requests run in parallel instead, and a fork/join per layer
  // costs a small request more than its math), so its primitives are
  // created with one thread, whichever thread compiles.
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

}  // namespace anorand
