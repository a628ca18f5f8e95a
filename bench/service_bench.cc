// anorand-bench service: load on a running server over gRPC, and in the
// same run the transport floor (grpc.health.v1 Check at the same
// concurrency) and the in-process forward throughput of the same model
// (exported from the server) at the same batch, and the cost of the drift
// window's Observe on the same records (drift_vs_forward: its time per
// record as a share of the forward pass's), and the same for a full
// reservoir of recent traffic (reservoir_vs_forward). With --with-training, the
// p99 of the same load while a training job runs on the server against the
// p99 of idle slices interleaved with it, and the job's epochs per second.
// With --with-shadow F, the model is imported again as a new version that
// becomes its shadow at sample F (Models.SetShadow) in every other slice,
// the requests pinned to the exported version: throughput and p99 with the
// shadow on against the slices with it off.
#include <omp.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <cstdio>
#include <mutex>
#include <thread>

#include "anorand/v1/models.grpc.pb.h"
#include "anorand/v1/scoring.grpc.pb.h"
#include "anorand/v1/training.grpc.pb.h"
#include "bench/bench_util.h"
#include "client/args.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "model/compiled_model.h"
#include "model/data/synthetic_data.h"
#include "model/drift_window.h"
#include "model/model_file.h"
#include "model/reservoir.h"
#include "nlohmann/json.hpp"

namespace anorand::bench {
namespace {

struct LoadResult {
  std::vector<double> latencies_us;
  int64_t records = 0;
  int64_t errors = 0;
  double seconds = 0;
};

// Runs `body(thread, &latencies, &records, &errors)` on `concurrency`
// threads until `seconds` pass.
template <typename Body>
LoadResult RunLoad(int concurrency, double seconds, Body body) {
  LoadResult total;
  std::mutex mu;
  std::vector<std::thread> threads;
  const auto t0 = Clock::now();
  const auto end = t0 + Seconds(seconds);
  for (int t = 0; t < concurrency; ++t) {
    threads.emplace_back([&, t] {
      LoadResult mine;
      body(t, end, &mine);
      std::lock_guard lock(mu);
      total.latencies_us.insert(total.latencies_us.end(), mine.latencies_us.begin(),
                                mine.latencies_us.end());
      total.records += mine.records;
      total.errors += mine.errors;
    });
  }
  for (auto& t : threads) t.join();
  total.seconds = ElapsedSeconds(t0);
  return total;
}

}  // namespace

int Service(const std::vector<std::string>& argv) {
  auto a = cli::Args::Parse(argv, {{"address", true, ""}, {"model", true, ""}, {"mode", true, ""},
                                   {"batch", true, ""}, {"concurrency", true, ""},
                                   {"seconds", true, ""}, {"format", true, ""},
                                   {"with-training", false, ""}, {"training-rounds", true, ""},
                                   {"token", true, ""}, {"with-shadow", true, ""},
                                   {"shadow-rounds", true, ""}});
  if (!a.ok()) {
    std::fprintf(stderr, "anorand-bench: %s\n", std::string(a.status().message()).c_str());
    return 2;
  }
  const std::string address = a->Get("address", "localhost:50051");
  const std::string model = a->Get("model");
  const std::string mode = a->Get("mode", "stream");
  auto batch = a->GetInt("batch", 256);
  auto conc = a->GetInt("concurrency", 1);
  auto seconds = a->GetDouble("seconds", 5);
  if (model.empty() || (mode != "unary" && mode != "stream") || !batch.ok() || *batch < 1 ||
      !conc.ok() || *conc < 1 || !seconds.ok() || *seconds <= 0) {
    std::fprintf(stderr, "anorand-bench service: --model NAME, --mode unary|stream, "
                         "--batch >= 1, --concurrency >= 1, --seconds > 0\n");
    return 2;
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(256 << 20);
  // One channel per worker thread, as independent clients would have.
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < *conc; ++i) {
    args.SetInt("anorand.bench.channel", i);  // distinct channel arguments: distinct connections
    channels.push_back(grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
  }

  // The model, exported from the server: its width, and the in-process
  // forward throughput at this batch.
  auto models = v1::Models::NewStub(channels[0]);
  grpc::ClientContext ectx;
  v1::ExportVersionRequest ereq;
  ereq.mutable_model()->set_name(model);
  auto reader = models->ExportVersion(&ectx, ereq);
  std::string bytes;
  v1::ExportChunk chunk;
  int64_t exported_version = 0;
  while (reader->Read(&chunk)) {
    if (chunk.version()) exported_version = chunk.version();
    bytes += chunk.data();
  }
  grpc::Status es = reader->Finish();
  if (!es.ok()) {
    std::fprintf(stderr, "anorand-bench: export of %s failed: %s\n", model.c_str(),
                 es.error_message().c_str());
    return 3;
  }
  auto file = ParseModel(bytes, "exported model");
  auto compiled = file.ok() ? CompiledModel::Create(*file) : file.status();
  if (!compiled.ok()) {
    std::fprintf(stderr, "anorand-bench: %s\n", std::string(compiled.status().message()).c_str());
    return 1;
  }
  const int d = (*compiled)->input_features();
  SyntheticOptions so;
  so.rows = std::max<int64_t>(*batch, 10);
  so.cols = d;
  const Dataset data = MakeSyntheticData(so);
  v1::ScoreRequest req;
  req.mutable_model()->set_name(model);
  req.mutable_batch()->set_num_features(d);
  req.mutable_batch()->mutable_values()->Add(data.x.begin(), data.x.begin() + *batch * d);

  omp_set_num_threads(1);
  std::vector<float> score(*batch);
  ScoreOutputs out;
  out.score = score.data();
  std::vector<double> per_call;
  const auto fend = Clock::now() + Seconds(1.0);
  while (Clock::now() < fend || per_call.size() < 20) {
    const auto t0 = Clock::now();
    (void)(*compiled)->Score(data.x.data(), *batch, out);
    per_call.push_back(ElapsedSeconds(t0));
  }
  const double forward_rps = *batch / Median(per_call);
  // The drift window's cost per record at this batch (what a READY version
  // adds to each scored batch when --drift_window_records > 0), measured on
  // the same records and scores.
  double drift_rps = 0;
  if (file->has_drift_profile()) {
    DriftWindow window(file->drift_profile(), 10000);
    std::vector<double> per_observe;
    const auto dend = Clock::now() + Seconds(1.0);
    while (Clock::now() < dend || per_observe.size() < 20) {
      const auto t0 = Clock::now();
      window.Observe(data.x.data(), *batch, score.data());
      per_observe.push_back(ElapsedSeconds(t0));
    }
    drift_rps = *batch / Median(per_observe);
  }
  // A reservoir's cost per record at this batch (--reservoir_records), in
  // its steady state: full, each record replacing one with a falling
  // probability.
  Reservoir reservoir(50000, int64_t{43200} * 1000, 1);
  const int64_t now_ms = 1;
  for (int64_t kept = 0; kept < reservoir.HalfRows(d);) {
    reservoir.Observe(data.x.data(), *batch, d, now_ms);
    int cols = 0;
    int64_t seen = 0;
    reservoir.Counts(now_ms, &cols, &kept, &seen);
  }
  std::vector<double> per_keep;
  const auto rend = Clock::now() + Seconds(1.0);
  while (Clock::now() < rend || per_keep.size() < 20) {
    const auto t0 = Clock::now();
    reservoir.Observe(data.x.data(), *batch, d, now_ms);
    per_keep.push_back(ElapsedSeconds(t0));
  }
  const double reservoir_rps = *batch / Median(per_keep);
  // The copy a write takes under the reservoir's lock (what a request for
  // the model may wait for once per --reservoir_flush_seconds).
  std::vector<double> per_copy;
  double copied = 0;  // read below, so the copies are made
  for (int i = 0; i < 5; ++i) {
    const auto t0 = Clock::now();
    const ReservoirSnapshot copy = reservoir.Snapshot(now_ms);
    per_copy.push_back(ElapsedSeconds(t0));
    copied += copy.current.x.empty() ? 0 : copy.current.x[copy.current.x.size() / 2];
  }

  // Transport floor: health checks at the same concurrency.
  auto run_floor = [&](double secs) {
  return RunLoad(static_cast<int>(*conc), secs,
                                   [&](int t, Clock::time_point end, LoadResult* r) {
    auto health = grpc::health::v1::Health::NewStub(channels[t]);
    grpc::health::v1::HealthCheckRequest hreq;
    grpc::health::v1::HealthCheckResponse hresp;
    while (Clock::now() < end) {
      grpc::ClientContext ctx;
      const auto t0 = Clock::now();
      grpc::Status s = health->Check(&ctx, hreq, &hresp);
      r->latencies_us.push_back(ElapsedSeconds(t0) * 1e6);
      if (!s.ok()) ++r->errors;
    }
  });
  };

  auto run_load = [&](double secs) {
  return RunLoad(static_cast<int>(*conc), secs,
                                  [&](int t, Clock::time_point end, LoadResult* r) {
    auto stub = v1::Scoring::NewStub(channels[t]);
    v1::ScoreResponse resp;
    if (mode == "unary") {
      while (Clock::now() < end) {
        grpc::ClientContext ctx;
        const auto t0 = Clock::now();
        grpc::Status s = stub->Score(&ctx, req, &resp);
        r->latencies_us.push_back(ElapsedSeconds(t0) * 1e6);
        if (s.ok()) r->records += resp.scores_size();
        else ++r->errors;
      }
      return;
    }
    // Pipelined like `anorand score`: a writer keeps up to kInFlight
    // requests ahead of the reader (the server reads the next request while
    // it writes the previous response).
    constexpr int kInFlight = 4;
    grpc::ClientContext ctx;
    auto stream = stub->StreamScore(&ctx);
    std::mutex qmu;
    std::condition_variable qcv;
    std::deque<Clock::time_point> sent;
    bool writer_done = false;
    std::thread writer([&] {
      while (Clock::now() < end) {
        {
          std::unique_lock lock(qmu);
          qcv.wait(lock, [&] { return sent.size() < kInFlight; });
          sent.push_back(Clock::now());
        }
        if (!stream->Write(req)) break;
      }
      std::lock_guard lock(qmu);
      writer_done = true;
      stream->WritesDone();
    });
    while (true) {
      if (!stream->Read(&resp)) break;
      Clock::time_point t0;
      {
        std::lock_guard lock(qmu);
        t0 = sent.front();
        sent.pop_front();
      }
      qcv.notify_one();
      r->latencies_us.push_back(ElapsedSeconds(t0) * 1e6);
      r->records += resp.scores_size();
    }
    writer.join();
    (void)writer_done;
    if (!stream->Finish().ok()) ++r->errors;
  });
  };
  // Unary: the floor and the load alternate in 100 ms slices, so both see
  // the same machine (this one is shared; a floor measured before the load
  // drifted by 2x between runs). Stream: the floor first, then the load.
  LoadResult floor, load;
  auto add = [](LoadResult* to, const LoadResult& from) {
    to->latencies_us.insert(to->latencies_us.end(), from.latencies_us.begin(),
                            from.latencies_us.end());
    to->records += from.records;
    to->errors += from.errors;
    to->seconds += from.seconds;
  };
  if (mode == "unary") {
    const auto end = Clock::now() + Seconds(*seconds * 1.5);
    while (Clock::now() < end) {
      add(&floor, run_floor(0.05));
      add(&load, run_load(0.1));
    }
  } else {
    floor = run_floor(*seconds / 2);
    load = run_load(*seconds);
  }

  // With --with-training: the same load in rounds of an idle slice (no job
  // on the server) then a slice while a training job is in its epochs (the
  // job started after the idle slice, cancelled after the training slice),
  // so both p99s come from the same minutes of a shared machine; their
  // ratio is the isolation bar. The job's epochs during the training slices
  // give its pace beside the ratio, and half a slice with no scoring after
  // each its pace alone.
  struct TrainingRounds {
    LoadResult idle, busy;
    int64_t epochs = 0, alone_epochs = 0;
    double throttled_seconds = 0, alone_seconds = 0;
  } tr;
  if (a->Has("with-training")) {
    auto training = v1::Training::NewStub(channels[0]);
    auto authorize = [&](grpc::ClientContext* ctx) {
      if (a->Has("token")) ctx->AddMetadata("authorization", "Bearer " + a->Get("token"));
    };
    SyntheticOptions to;
    to.rows = 20000;
    to.cols = d;
    const Dataset train = MakeSyntheticData(to);
    auto get = [&](const std::string& id, v1::Job* now) {
      grpc::ClientContext ctx;
      authorize(&ctx);
      v1::GetJobRequest g;
      g.set_job_id(id);
      return training->GetJob(&ctx, g, now);
    };
    auto terminal = [](v1::JobState s) {
      return s == v1::JOB_STATE_SUCCEEDED || s == v1::JOB_STATE_FAILED ||
             s == v1::JOB_STATE_CANCELLED;
    };
    auto rounds = a->GetInt("training-rounds", 4);
    if (!rounds.ok() || *rounds < 1) {
      std::fprintf(stderr, "anorand-bench service: --training-rounds >= 1\n");
      return 2;
    }
    const double slice = *seconds / static_cast<double>(*rounds);
    for (int64_t round = 0; round < *rounds; ++round) {
      add(&tr.idle, run_load(slice));
      grpc::ClientContext sctx;
      authorize(&sctx);
      v1::Job job;
      auto w = training->SubmitJob(&sctx, &job);
      v1::SubmitJobRequest head;
      head.mutable_spec()->set_model_name(model + "-bench-training");
      head.mutable_spec()->set_upload_format(v1::UPLOAD_FORMAT_DENSE);
      head.mutable_spec()->mutable_params()->set_max_epochs(100000);
      head.mutable_spec()->mutable_params()->set_patience(0);
      w->Write(head);
      v1::SubmitJobRequest chunk;
      chunk.mutable_chunk()->set_num_features(d);
      chunk.mutable_chunk()->mutable_values()->Add(train.x.begin(), train.x.end());
      w->Write(chunk);
      w->WritesDone();
      grpc::Status ts = w->Finish();
      if (!ts.ok()) {
        std::fprintf(stderr, "anorand-bench: could not start a training job: %s\n",
                     ts.error_message().c_str());
        return 1;
      }
      v1::Job before;  // in its epochs (or 10 s passed)
      for (int i = 0; i < 500; ++i) {
        if (get(job.id(), &before).ok() && before.progress().epoch() >= 1) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      add(&tr.busy, run_load(slice));
      v1::Job after;
      if (get(job.id(), &after).ok() && after.progress().member() == before.progress().member()) {
        tr.epochs += after.progress().epoch() - before.progress().epoch();
        tr.throttled_seconds +=
            after.progress().throttled_seconds() - before.progress().throttled_seconds();
      }
      // The job's pace with no scoring at all, for reference.
      const auto alone_start = Clock::now();
      std::this_thread::sleep_for(Seconds(slice / 2));
      v1::Job alone;
      if (get(job.id(), &alone).ok() && alone.progress().member() == after.progress().member()) {
        tr.alone_epochs += alone.progress().epoch() - after.progress().epoch();
        tr.alone_seconds += ElapsedSeconds(alone_start);
      }
      grpc::ClientContext cctx;
      authorize(&cctx);
      v1::CancelJobRequest c;
      c.set_job_id(job.id());
      v1::Job cancelled;
      (void)training->CancelJob(&cctx, c, &cancelled);
      for (int i = 0; i < 500; ++i) {  // gone before the next idle slice
        v1::Job now;
        if (!get(job.id(), &now).ok() || terminal(now.state())) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
  }
  // With --with-shadow: slices with the shadow off and on, alternating
  // which comes first.
  struct ShadowRounds {
    LoadResult off, on;
    double sample = 0;
    int64_t compared = 0, dropped = 0;
  } sh;
  if (a->Has("with-shadow")) {
    auto sample = a->GetDouble("with-shadow", 0);
    auto rounds = a->GetInt("shadow-rounds", 6);
    if (!sample.ok() || !(*sample > 0 && *sample <= 1) || !rounds.ok() || *rounds < 1) {
      std::fprintf(stderr, "anorand-bench service: --with-shadow F in (0, 1], --shadow-rounds >= 1\n");
      return 2;
    }
    sh.sample = *sample;
    auto authorize = [&](grpc::ClientContext* ctx) {
      if (a->Has("token")) ctx->AddMetadata("authorization", "Bearer " + a->Get("token"));
    };
    grpc::ClientContext ictx;
    authorize(&ictx);
    v1::VersionInfo imported;
    auto w = models->ImportVersion(&ictx, &imported);
    v1::ImportChunk head;
    head.mutable_header()->set_model_name(model);
    w->Write(head);
    for (size_t at = 0; at < bytes.size(); at += 1 << 20) {
      v1::ImportChunk c;
      c.set_data(bytes.substr(at, 1 << 20));
      w->Write(c);
    }
    w->WritesDone();
    if (grpc::Status is = w->Finish(); !is.ok()) {
      std::fprintf(stderr, "anorand-bench: import of the shadow failed: %s\n",
                   is.error_message().c_str());
      return 1;
    }
    req.mutable_model()->set_version(exported_version);
    auto set_shadow = [&](bool on) {
      grpc::ClientContext ctx;
      authorize(&ctx);
      v1::ModelInfo info;
      if (on) {
        v1::SetShadowRequest r;
        r.set_model_name(model);
        r.set_version(imported.version());
        r.set_sample_fraction(*sample);
        return models->SetShadow(&ctx, r, &info).ok();
      }
      v1::ClearShadowRequest r;
      r.set_model_name(model);
      return models->ClearShadow(&ctx, r, &info).ok();
    };
    // The server keeps a comparison since it started: the figures of this
    // run are the difference.
    auto comparison = [&](int64_t* compared, int64_t* dropped) {
      grpc::ClientContext cctx;
      authorize(&cctx);
      v1::CompareShadowRequest cr;
      cr.set_model_name(model);
      v1::CompareShadowResponse cmp;
      *compared = *dropped = 0;
      if (!models->CompareShadow(&cctx, cr, &cmp).ok()) return;
      for (const auto& c : cmp.comparisons())
        if (c.shadow_version() == imported.version()) *compared = c.compared_records();
      *dropped = cmp.dropped_records();
    };
    int64_t compared0, dropped0;
    comparison(&compared0, &dropped0);
    const double slice = *seconds / static_cast<double>(*rounds);
    for (int64_t round = 0; round < 2 * *rounds; ++round) {
      const bool on = (round % 2 == 0) == (round / 2 % 2 == 0);
      if (!set_shadow(on)) {
        std::fprintf(stderr, "anorand-bench: SetShadow/ClearShadow failed\n");
        return 1;
      }
      add(on ? &sh.on : &sh.off, run_load(slice));
    }
    set_shadow(false);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the queue drains
    comparison(&sh.compared, &sh.dropped);
    sh.compared -= compared0;
    sh.dropped -= dropped0;
    // The shadow version is removed again; the server is as it was.
    grpc::ClientContext dctx;
    authorize(&dctx);
    v1::DeleteVersionRequest del;
    del.set_model_name(model);
    del.set_version(imported.version());
    v1::DeleteVersionResponse deleted;
    (void)models->DeleteVersion(&dctx, del, &deleted);
  }
  nlohmann::json j = {{"bench", "service"},
                      {"mode", mode},
                      {"batch", *batch},
                      {"concurrency", *conc},
                      {"seconds", load.seconds},
                      {"records_per_s", load.records / load.seconds},
                      {"calls", load.latencies_us.size()},
                      {"p50_us", Median(load.latencies_us)},
                      {"p99_us", Percentile(load.latencies_us, 0.99)},
                      {"errors", load.errors + floor.errors},
                      {"floor_p50_us", Median(floor.latencies_us)},
                      {"floor_p99_us", Percentile(floor.latencies_us, 0.99)},
                      {"forward_records_per_s", forward_rps},
                      {"stream_vs_forward", load.records / load.seconds / forward_rps},
                      {"drift_observe_records_per_s", drift_rps},
                      {"drift_vs_forward", drift_rps > 0 ? forward_rps / drift_rps : 0},
                      {"reservoir_observe_records_per_s", reservoir_rps},
                      {"reservoir_vs_forward", forward_rps / reservoir_rps},
                      {"reservoir_rows", reservoir.HalfRows(d)},
                      {"reservoir_copy_ms", 1000 * Median(per_copy)},
                      {"reservoir_copy_check", copied},
                      {"p50_vs_floor", Median(load.latencies_us) / Median(floor.latencies_us)}};
  if (a->Has("with-training")) {
    const double idle_p99 = Percentile(tr.idle.latencies_us, 0.99);
    const double busy_p99 = Percentile(tr.busy.latencies_us, 0.99);
    j["training_rounds"] = a->GetInt("training-rounds", 4).value_or(4);
    j["p99_us_idle_slices"] = idle_p99;
    j["p99_us_while_training"] = busy_p99;
    j["p50_us_idle_slices"] = Median(tr.idle.latencies_us);
    j["p50_us_while_training"] = Median(tr.busy.latencies_us);
    j["p99_training_vs_idle"] = busy_p99 / idle_p99;
    j["training_epochs_per_s"] = tr.epochs / tr.busy.seconds;
    j["training_alone_epochs_per_s"] = tr.alone_seconds > 0 ? tr.alone_epochs / tr.alone_seconds : 0;
    j["training_throttled_share"] = tr.throttled_seconds / tr.busy.seconds;
    j["errors"] = load.errors + floor.errors + tr.idle.errors + tr.busy.errors;
  }
  if (a->Has("with-shadow")) {
    j["shadow_sample"] = sh.sample;
    j["records_per_s_shadow_off"] = sh.off.records / sh.off.seconds;
    j["records_per_s_shadow_on"] = sh.on.records / sh.on.seconds;
    j["throughput_shadow_on_vs_off"] =
        (sh.on.records / sh.on.seconds) / (sh.off.records / sh.off.seconds);
    j["p99_us_shadow_off"] = Percentile(sh.off.latencies_us, 0.99);
    j["p99_us_shadow_on"] = Percentile(sh.on.latencies_us, 0.99);
    j["p99_shadow_on_vs_off"] =
        Percentile(sh.on.latencies_us, 0.99) / Percentile(sh.off.latencies_us, 0.99);
    j["shadow_compared_records"] = sh.compared;
    j["shadow_dropped_records"] = sh.dropped;
    j["errors"] = j["errors"].get<int64_t>() + sh.off.errors + sh.on.errors;
  }
  if (a->Get("format", "json") == "text") {
    for (auto it = j.begin(); it != j.end(); ++it)
      std::printf("%-22s %s\n", it.key().c_str(), it.value().dump().c_str());
  } else {
    std::printf("%s\n", j.dump(2).c_str());
  }
  return load.errors + floor.errors + tr.idle.errors + tr.busy.errors + sh.off.errors +
                     sh.on.errors >
                 0
             ? 1
             : 0;
}

}  // namespace anorand::bench
