#include "model/dnnl_util.h"

namespace anorand {

dnnl::engine& CpuEngine() {
  static dnnl::engine* engine = new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *engine;
}

BoundPrimitive::BoundPrimitive(dnnl::primitive prim, const std::vector<Arg>& args)
    : prim_(std::move(prim)) {
  for (const Arg& a : args) {
    memories_.emplace_back(a.desc, CpuEngine(), static_cast<void*>(nullptr));
    args_.emplace(a.id, memories_.back());
  }
}

void BoundPrimitive::Execute(dnnl::stream& s, std::initializer_list<const void*> data) {
  size_t i = 0;
  for (const void* p : data) memories_[i++].set_data_handle(const_cast<void*>(p));
  prim_.execute(s, args_);
}

}  // namespace anorand
