// File: dnnl_util.h
//
// Shared oneDNN plumbing: the process-wide CPU engine (thread-safe, created
// once) and shorthands for the plain row-major layouts this project uses.
#ifndef ANORAND_MODEL_DNNL_UTIL_H_
#define ANORAND_MODEL_DNNL_UTIL_H_

#include <cstdint>
#include <initializer_list>
#include <unordered_map>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"

namespace anorand {

dnnl::engine& CpuEngine();

// A rows x cols f32 row-major matrix (format nc / ab).
inline dnnl::memory::desc MatDesc(int64_t rows, int64_t cols) {
  return dnnl::memory::desc({rows, cols}, dnnl::memory::data_type::f32,
                            dnnl::memory::format_tag::ab);
}

// A rows x cols f32 view with a row stride (a column slice of a wider matrix).
inline dnnl::memory::desc StridedDesc(int64_t rows, int64_t cols, int64_t row_stride) {
  return dnnl::memory::desc({rows, cols}, dnnl::memory::data_type::f32, {row_stride, 1});
}

inline dnnl::memory::desc VecDesc(int64_t n) {
  return dnnl::memory::desc({n}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::a);
}

// A memory object over caller-owned storage (no copy, no ownership).
inline dnnl::memory Wrap(const dnnl::memory::desc& md, const float* p) {
  return dnnl::memory(md, CpuEngine(), const_cast<float*>(p));
}

// A primitive with its argument memory objects created once: an execution
// only points them at new data (set_data_handle), which costs far less than
// creating memory objects per call. Not thread-safe (the memory objects are
// shared state): the training graph, driven by one thread, uses it.
class BoundPrimitive {
 public:
  struct Arg {
    int id;
    dnnl::memory::desc desc;
  };
  BoundPrimitive() = default;
  BoundPrimitive(dnnl::primitive prim, const std::vector<Arg>& args);

  // `data` holds one pointer per argument, in the order of `args`.
  void Execute(dnnl::stream& s, std::initializer_list<const void*> data);

 private:
  dnnl::primitive prim_;
  std::vector<dnnl::memory> memories_;
  std::unordered_map<int, dnnl::memory> args_;
};

}  // namespace anorand

#endif  // ANORAND_MODEL_DNNL_UTIL_H_
