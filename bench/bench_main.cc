// anorand-bench: programs that print numbers (never timed tests).
//   anorand-bench forward  --model MODEL | --features D  --batch N --threads T
//   anorand-bench train    --rows 20000 --features 20 --epochs 5 --threads T
//   anorand-bench train-scale --rows 10000,100000,1000000 [--data FILE.npz] --threads 1
// Each prints one JSON object (--format json) or aligned text. Medians of
// repeated runs; see docs/PERFORMANCE.md for how the numbers are used.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "client/args.h"
#include "model/compiled_model.h"
#include "model/inference_plan.h"
#include "model/data/synthetic_data.h"
#include "model/model_file.h"
#include "model/network.h"
#include "model/params.h"
#include "model/trainer.h"
#include "nlohmann/json.hpp"
#include "oneapi/dnnl/dnnl.hpp"

namespace anorand::bench {
namespace {

using cli::Args;
using cli::FlagSpec;

int Usage(const std::string& msg) {
  std::fprintf(stderr,
               "anorand-bench: %s\n"
               "usage: anorand-bench forward [--model MODEL | --features D] [--batch N] "
               "[--threads T] [--seconds S] [--format json|text]\n"
               "       anorand-bench train [--rows N] [--features D] [--epochs E] [--threads T] "
               "[--format json|text]\n"
               "       anorand-bench train-scale [--rows N,N,...] [--features D] [--data FILE ...] "
               "[--preset P] [--param NAME=VALUE ...] [--threads T] [--repeats R]\n"
               "       anorand-bench service --address HOST:PORT --model NAME --mode unary|stream "
               "[--batch N] [--concurrency C] [--seconds S] [--format json|text]\n"
               "                 [--with-training [--training-rounds R] [--token T]]\n",
               msg.c_str());
  return 2;
}

void Print(const nlohmann::json& j, const std::string& format) {
  if (format == "text") {
    for (auto it = j.begin(); it != j.end(); ++it)
      std::printf("%-22s %s\n", it.key().c_str(), it.value().dump().c_str());
  } else {
    std::printf("%s\n", j.dump(2).c_str());
  }
}

// GFLOP/s of a large f32 matmul on this machine with the current threads:
// the yardstick that "efficiency" divides by.
double PeakMatmulGflops(double seconds) {
  const int64_t n = 1024;
  auto& eng = CpuEngine();
  dnnl::stream s(eng);
  using dnnl::memory;
  memory::desc a({n, n}, memory::data_type::f32, memory::format_tag::ab);
  memory::desc any({n, n}, memory::data_type::f32, memory::format_tag::any);
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, any, a), eng);
  std::vector<float> x(n * n, 1.0f), y(n * n);
  memory w(pd.weights_desc(), eng);
  std::memset(w.get_data_handle(), 0, pd.weights_desc().get_size());
  dnnl::matmul mm(pd);
  memory src(a, eng, x.data()), dst(a, eng, y.data());
  std::vector<double> rates;
  const auto end = Clock::now() + Seconds(seconds);
  mm.execute(s, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, dst}});
  while (Clock::now() < end || rates.size() < 5) {
    const auto t0 = Clock::now();
    mm.execute(s, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, dst}});
    s.wait();
    rates.push_back(2.0 * n * n * n / ElapsedSeconds(t0) / 1e9);
  }
  return Median(rates);
}

v1::ModelFile RandomModel(int d) {
  v1::TrainingParams user;
  user.set_preset("paper");
  auto p = ResolveParams(user, d);
  Rng rng(1);
  TrainingNetwork net(*p, d, 16, rng);
  v1::ModelFile m;
  *m.mutable_network() = net.ToProto();
  auto* n = m.mutable_normalizer();
  n->set_kind(v1::Normalizer::KIND_NONE);
  for (int i = 0; i < d; ++i) {
    n->add_offset(0);
    n->add_scale(1);
  }
  m.mutable_score_stats()->set_rule(v1::SCORE_RULE_PAPER);
  m.mutable_score_stats()->set_alpha(0.5);
  return m;
}

int Forward(const std::vector<std::string>& argv) {
  auto a = Args::Parse(argv, {{"model", true, ""}, {"features", true, ""}, {"batch", true, ""},
                              {"threads", true, ""}, {"seconds", true, ""}, {"format", true, ""}});
  if (!a.ok()) return Usage(std::string(a.status().message()));
  auto batch = a->GetInt("batch", 256);
  auto threads = a->GetInt("threads", 1);
  auto seconds = a->GetDouble("seconds", 2);
  auto features = a->GetInt("features", 20);
  if (!batch.ok() || *batch < 1 || !threads.ok() || *threads < 1 || !seconds.ok() ||
      !features.ok() || *features < 1) {
    return Usage("--batch, --threads, --features must be positive integers");
  }
  omp_set_num_threads(static_cast<int>(*threads));
  v1::ModelFile file;
  if (a->Has("model")) {
    auto f = LoadModelFile(a->Get("model"));
    if (!f.ok()) return Usage(std::string(f.status().message()));
    file = *std::move(f);
  } else {
    file = RandomModel(static_cast<int>(*features));
  }
  auto model = CompiledModel::Create(file);
  if (!model.ok()) return Usage(std::string(model.status().message()));
  const int d = (*model)->input_features();
  const int64_t n = *batch;
  SyntheticOptions so;
  so.rows = std::max<int64_t>(n, 10);
  so.cols = d;
  Dataset data = MakeSyntheticData(so);
  std::vector<float> yhat(n), xhat(n * d), score(n);
  ScoreOutputs out;
  out.score = score.data();
  // Plan only (the forward pass), then the whole Score (normalise, forward,
  // combine): both as the median of many timed repetitions.
  auto time_loop = [&](auto&& body) {
    std::vector<double> per_call;
    for (int i = 0; i < 20; ++i) body();  // warm up
    const auto end = Clock::now() + Seconds(*seconds / 2);
    while (Clock::now() < end || per_call.size() < 20) {
      const auto t0 = Clock::now();
      body();
      per_call.push_back(ElapsedSeconds(t0));
    }
    return Median(per_call);
  };
  const double plan_s = time_loop([&] { (void)(*model)->Forward(data.x.data(), n, yhat.data(), xhat.data()); });
  const double score_s = time_loop([&] { (void)(*model)->Score(data.x.data(), n, out); });
  const double flops = 2.0 * (*model)->plan().macs_per_row() * n;
  const double gflops = flops / plan_s / 1e9;
  const double peak = PeakMatmulGflops(1.0);
  nlohmann::json j = {{"bench", "forward"},
                      {"features", d},
                      {"batch", n},
                      {"threads", *threads},
                      {"macs_per_record", (*model)->plan().macs_per_row()},
                      {"forward_us", plan_s * 1e6},
                      {"score_us", score_s * 1e6},
                      {"records_per_s", n / score_s},
                      {"forward_records_per_s", n / plan_s},
                      {"gflops", gflops},
                      {"matmul_gflops", peak},
                      {"efficiency", gflops / peak}};
  // An ensemble: its members as one group plan against one plan each, at
  // this batch (CompiledModel uses the group plan up to
  // kGroupMaxRows records).
  if (file.ensemble_size() > 0) {
    std::vector<const v1::Network*> nets = {&file.network()};
    for (const auto& member : file.ensemble()) nets.push_back(&member.network());
    const bool sigmoid = !file.score_stats().noise_logit();
    auto group = InferencePlan::CompileGroup(nets, sigmoid, InferencePlan::kTileRows);
    if (!group.ok()) return Usage(std::string(group.status().message()));
    std::vector<std::unique_ptr<InferencePlan>> alone;
    for (const v1::Network* net : nets) {
      auto plan = InferencePlan::Compile(*net, sigmoid);
      if (!plan.ok()) return Usage(std::string(plan.status().message()));
      alone.push_back(*std::move(plan));
    }
    const size_t g = nets.size();
    std::vector<float> gx(g * n * d), gy(g * n), gxhat(g * n * d);
    for (size_t m = 0; m < g; ++m) std::copy(data.x.begin(), data.x.begin() + n * d, gx.begin() + m * n * d);
    const double group_s = time_loop([&] { (void)(*group)->Run(gx.data(), n, gy.data(), gxhat.data()); });
    const double alone_s = time_loop([&] {
      for (size_t m = 0; m < g; ++m) {
        (void)alone[m]->Run(&gx[m * n * d], n, &gy[m * n], &gxhat[m * n * d]);
      }
    });
    j["members"] = g;
    j["group_plan_us"] = group_s * 1e6;
    j["member_plans_us"] = alone_s * 1e6;
    j["group_speedup"] = alone_s / group_s;
  }
  Print(j, a->Get("format", "json"));
  return 0;
}

int Train(const std::vector<std::string>& argv) {
  auto a = Args::Parse(argv, {{"rows", true, ""}, {"features", true, ""}, {"epochs", true, ""},
                              {"threads", true, ""}, {"format", true, ""}, {"preset", true, ""}});
  if (!a.ok()) return Usage(std::string(a.status().message()));
  auto rows = a->GetInt("rows", 20000);
  auto features = a->GetInt("features", 20);
  auto epochs = a->GetInt("epochs", 5);
  auto threads = a->GetInt("threads", 1);
  if (!rows.ok() || *rows < 100 || !features.ok() || *features < 1 || !epochs.ok() ||
      *epochs < 2 || !threads.ok() || *threads < 1) {
    return Usage("--rows >= 100, --features >= 1, --epochs >= 2, --threads >= 1");
  }
  SyntheticOptions so;
  so.rows = *rows;
  so.cols = static_cast<int>(*features);
  Dataset data = MakeSyntheticData(so);
  data.labels.clear();
  v1::TrainingParams p;
  p.set_preset(a->Get("preset", "paper"));
  p.set_max_epochs(static_cast<int>(*epochs));
  p.set_patience(0);
  p.set_min_steps(0);
  std::vector<double> epoch_s;
  double last = 0;
  TrainOptions o;
  o.threads = static_cast<int>(*threads);
  o.on_epoch = [&](const EpochProgress& e) {
    epoch_s.push_back(e.elapsed_seconds - last);
    last = e.elapsed_seconds;
  };
  const auto t0 = Clock::now();
  auto m = TrainModel(data, p, o);
  if (!m.ok()) return Usage(std::string(m.status().message()));
  // The first epoch includes primitive creation; the median is of the rest.
  std::vector<double> steady(epoch_s.begin() + 1, epoch_s.end());
  nlohmann::json j = {{"bench", "train"},
                      {"rows", *rows},
                      {"features", *features},
                      {"epochs", *epochs},
                      {"threads", *threads},
                      {"batch", m->params().batch_size()},
                      {"seconds_per_epoch", Median(steady)},
                      {"first_epoch_seconds", epoch_s.front()},
                      {"fit_seconds", ElapsedSeconds(t0)}};
  Print(j, a->Get("format", "json"));
  return 0;
}

}  // namespace
}  // namespace anorand::bench

int main(int argc, char** argv) {
  if (argc < 2) return anorand::bench::Usage("missing benchmark name");
  const std::string what = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  if (what == "forward") return anorand::bench::Forward(args);
  if (what == "train") return anorand::bench::Train(args);
  if (what == "train-scale") return anorand::bench::TrainScale(args);
  if (what == "service") return anorand::bench::Service(args);
  return anorand::bench::Usage("unknown benchmark '" + what + "'");
}
