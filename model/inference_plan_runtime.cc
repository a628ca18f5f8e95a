// Runtime: Run() on the calling thread, with that thread's stream,
// activation arena, scratchpad and pre-bound memory objects.
#include <algorithm>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "model/dnnl_util.h"
#include "model/inference_plan.h"
#include "model/inference_plan_internal.h"

namespace anorand {

using dnnl::memory;
using inference_plan_internal::OneOmpThread;

namespace {

// Per thread, shared by every plan the thread runs (one Run at a time per
// thread): the activation arena, the scratchpad and the padding buffers,
// grown to the largest plan seen, so a thread that serves many plans
// (several ensembles, several versions) holds one arena, not one per plan.
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

}  // namespace

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
  // oneDNN's matmul reads the caller's OpenMP setting when it executes as
  // well as when it is created: without this, every layer forks onto all
  // cores (the default is one thread per core) while requests already run
  // in parallel, and the wake-ups cost more than the math
  // (docs/PERFORMANCE.md).
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
