// Crash consistency: the real server is killed with SIGKILL at random
// moments while it publishes (imports with and without an alias, alias
// moves, deletes, and in some rounds a training job that publishes on
// completion), then started again on the same model folder. After every
// restart store_check.h's invariants hold, and nothing acknowledged is
// lost: every version an OK call published (and no OK call deleted) is
// there with its bytes, the last acknowledged import serves, each alias is
// where the last OK call put it (or where the call in flight at the kill
// would have), and a version nobody acknowledged is the call in flight or
// a training job's, whose record says SUCCEEDED with that version (also
// when the kill came between the publish and the job's record).
//
// Kill moments (seeded): a random delay of up to 25 ms into the publishing
// calls; the k-th change of the model folder (inotify) plus up to 1 ms, so
// kills land inside a publish, an alias write or a delete; the training
// job's publish (its version folder appearing) plus up to 3 ms; or a
// random moment in the first 1.5 s of the training run.
// ANORAND_CRASH_ROUNDS (default 100) sets the number of kills;
// ANORAND_CRASH_SEED repeats a run's schedule.
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include "gtest/gtest.h"
#include "model/model_file.h"
#include "tests/reliability/server_process.h"
#include "tests/reliability/store_check.h"
#include "tests/support/test_util.h"

namespace anorand::test_support {
namespace {

constexpr int kD = 6;
constexpr char kModel[] = "m";
const char* const kAliases[] = {"production", "shadow"};

struct Op {
  enum Kind { kImport, kAlias, kDelete } kind = kImport;
  int source = 0;       // kImport: which source file
  std::string alias;    // kImport (may be empty), kAlias
  int64_t version = 0;  // kAlias, kDelete; kImport once acknowledged
};

// What the acknowledged calls imply about the store.
struct Expected {
  std::map<int64_t, std::string> bytes;    // versions that must exist, and their files
  std::map<std::string, int64_t> aliases;  // kAliases only
  int64_t last_import = 0;
  void Apply(const Op& op, const std::vector<std::string>& sources) {
    if (op.kind == Op::kImport) {
      bytes[op.version] = sources[op.source];
      if (!op.alias.empty()) aliases[op.alias] = op.version;
      last_import = op.version;
    } else if (op.kind == Op::kAlias) {
      aliases[op.alias] = op.version;
    } else {
      bytes.erase(op.version);
    }
  }
};

// The changes of one folder, through inotify.
class FolderEvents {
 public:
  explicit FolderEvents(const std::string& dir) : fd_(inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) {
    inotify_add_watch(fd_, dir.c_str(), IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE);
  }
  ~FolderEvents() { close(fd_); }
  // The next event's file name, with '>' appended when the file was renamed
  // into the folder; nullopt after timeout_seconds.
  std::optional<std::string> Next(double timeout_seconds) {
    const auto end = std::chrono::steady_clock::now() +
                     std::chrono::milliseconds(static_cast<int64_t>(timeout_seconds * 1000));
    while (pending_.empty()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          end - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      alignas(inotify_event) char buf[8192];
      const ssize_t n = read(fd_, buf, sizeof(buf));
      for (ssize_t at = 0; at < n;) {
        const auto* e = reinterpret_cast<const inotify_event*>(buf + at);
        pending_.push_back(std::string(e->len ? e->name : "") +
                           ((e->mask & IN_MOVED_TO) ? ">" : ""));
        at += static_cast<ssize_t>(sizeof(inotify_event) + e->len);
      }
    }
    std::string e = pending_.front();
    pending_.erase(pending_.begin());
    return e;
  }

 private:
  int fd_;
  std::vector<std::string> pending_;
};

bool Refusal(grpc::StatusCode c) { return c == grpc::StatusCode::FAILED_PRECONDITION; }

class CrashConsistencyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (uint64_t s = 1; s <= 3; ++s) sources_.push_back(SerializeModel(TinyModel(kD, s)));
    root_ = dir_.path() + "/models";
  }

  // The calls of one round, in order, until the kill; fills acked_/inflight_.
  void Publish(const ServerProcess& server, uint64_t seed, bool imports) {
    std::mt19937_64 rng(seed);
    auto stub = v1::Models::NewStub(server.NewChannel());
    {  // Connected before the kill clock starts.
      grpc::ClientContext ctx;
      Prepare(&ctx, 60);
      v1::ListModelsResponse list;
      grpc::Status s = stub->ListModels(&ctx, v1::ListModelsRequest(), &list);
      EXPECT_TRUE(s.ok()) << s.error_message();
      ready_ = true;
    }
    Expected e = expected_;
    while (true) {
      Op op;
      const int pick = static_cast<int>(rng() % 10);
      // The lowest version no alias of ours names, when there are many.
      int64_t oldest = 0;
      for (const auto& [v, b] : e.bytes) {
        bool named = v == e.last_import;
        for (const auto& [a, t] : e.aliases) named |= t == v;
        if (!named) {
          oldest = v;
          break;
        }
      }
      if (pick < 2 && e.bytes.size() > 5 && oldest > 0) {
        op.kind = Op::kDelete;
        op.version = oldest;
      } else if (pick < 6 || !imports) {
        op.kind = Op::kAlias;
        op.alias = kAliases[rng() % 2];
        auto it = e.bytes.begin();
        std::advance(it, static_cast<int64_t>(rng() % e.bytes.size()));
        op.version = it->first;
      } else {
        op.kind = Op::kImport;
        op.source = static_cast<int>(rng() % sources_.size());
        const int a = static_cast<int>(rng() % 3);
        op.alias = a == 2 ? "" : kAliases[a];
      }
      inflight_ = op;
      grpc::Status s;
      grpc::ClientContext ctx;
      Prepare(&ctx, 60);
      if (op.kind == Op::kImport) {
        s = ImportModel(stub.get(), "", kModel, sources_[op.source], op.alias, &inflight_->version);
      } else if (op.kind == Op::kAlias) {
        v1::SetAliasRequest req;
        req.set_model_name(kModel);
        req.set_alias(op.alias);
        req.set_version(op.version);
        v1::ModelInfo info;
        s = stub->SetAlias(&ctx, req, &info);
      } else {
        v1::DeleteVersionRequest req;
        req.set_model_name(kModel);
        req.set_version(op.version);
        v1::DeleteVersionResponse resp;
        s = stub->DeleteVersion(&ctx, req, &resp);
      }
      if (s.ok()) {
        e.Apply(*inflight_, sources_);
        acked_.push_back(*inflight_);
        inflight_.reset();
      } else if (killed_.load()) {
        return;  // the kill: the call in flight may or may not have happened
      } else if (op.kind == Op::kDelete && Refusal(s.error_code())) {
        inflight_.reset();  // a training job's alias names it: refused, no change
      } else {
        ADD_FAILURE() << "call failed before the kill: " << s.error_message();
        inflight_.reset();
        return;
      }
    }
  }

  // Compares the restarted server's state with what was acknowledged.
  void CheckAgainstAcknowledged(const StoreState& st, const std::string& context) {
    Expected e = expected_;
    for (const Op& op : acked_) e.Apply(op, sources_);
    for (const Op& op : acked_)
      if (op.kind == Op::kDelete) deleted_.insert(op.version);
    if (inflight_ && inflight_->kind == Op::kDelete) deleted_.insert(inflight_->version);
    const bool in_import = inflight_ && inflight_->kind == Op::kImport;
    int64_t inflight_version = 0;
    for (const auto& [v, b] : e.bytes) {
      if (inflight_ && inflight_->kind == Op::kDelete && inflight_->version == v &&
          !st.bytes.count(v))
        continue;  // deleted by the call in flight
      ASSERT_TRUE(st.bytes.count(v)) << context << ": acknowledged version " << v << " is gone";
      EXPECT_TRUE(st.bytes.at(v) == b) << context << ": version " << v << " changed";
    }
    for (const auto& [v, info] : st.versions) {
      if (e.bytes.count(v)) continue;
      if (!info.training_job_id().empty() && jobs_.count(info.training_job_id())) {
        training_published_.insert(v);
        continue;
      }
      EXPECT_TRUE(in_import && inflight_version == 0 &&
                  st.bytes.at(v) == sources_[inflight_->source])
          << context << ": version " << v << " was never acknowledged nor in flight";
      inflight_version = v;
      ++inflight_seen_;
    }
    for (const char* alias : kAliases) {
      auto want = e.aliases.find(alias);
      auto got = st.aliases.find(alias);
      const bool same = (want == e.aliases.end()) == (got == st.aliases.end()) &&
                        (got == st.aliases.end() || got->second == want->second);
      const bool inflight_alias =
          inflight_ && inflight_->alias == alias && got != st.aliases.end() &&
          got->second == (in_import ? inflight_version : inflight_->version);
      EXPECT_TRUE(same || inflight_alias)
          << context << ": alias " << alias << " moved unacknowledged";
    }
    if (e.last_import > 0) {
      EXPECT_TRUE(st.versions.count(e.last_import))
          << context << ": the last acknowledged import " << e.last_import << " is missing";
    }
    if (auto c = st.aliases.find("canary"); c != st.aliases.end() && st.versions.count(c->second)) {
      EXPECT_FALSE(st.versions.at(c->second).training_job_id().empty()) << context;
    }
    for (const v1::Job& j : st.jobs) {
      for (const auto& [v, info] : st.versions) {
        if (info.training_job_id() != j.id()) continue;
        // A job killed after its publish must not come back FAILED (which
        // invites a duplicate run): its record names the version.
        EXPECT_TRUE(j.state() == v1::JOB_STATE_SUCCEEDED && j.published_version() == v)
            << context << ": version " << v << " published by job " << j.id() << ", which is "
            << v1::JobState_Name(j.state()) << " (" << j.error() << "), version "
            << j.published_version();
      }
      if (j.progress().message().find("after a restart") != std::string::npos) {
        confirmed_after_restart_.insert(j.id());  // informative only
      }
      if (j.state() == v1::JOB_STATE_SUCCEEDED && !deleted_.count(j.published_version())) {
        const auto it = st.versions.find(j.published_version());
        EXPECT_TRUE(it != st.versions.end() && it->second.training_job_id() == j.id())
            << context << ": job " << j.id() << " says it published " << j.published_version();
      }
    }
    // From now on the restarted state is the truth.
    expected_.bytes = st.bytes;
    expected_.aliases.clear();
    for (const char* alias : kAliases)
      if (st.aliases.count(alias)) expected_.aliases[alias] = st.aliases.at(alias);
    expected_.last_import = e.last_import;
    if (!st.versions.count(expected_.last_import)) expected_.last_import = 0;
    if (in_import && inflight_version > 0) expected_.last_import = inflight_version;
    acked_.clear();
    inflight_.reset();
  }

  TempDir dir_;
  std::string root_;
  std::vector<std::string> sources_;
  Expected expected_;
  std::vector<Op> acked_;
  std::optional<Op> inflight_;
  std::atomic<bool> killed_{false}, ready_{false};
  std::set<std::string> jobs_;
  std::set<int64_t> deleted_;
  std::set<int64_t> training_published_;
  std::set<std::string> confirmed_after_restart_;
  int inflight_seen_ = 0;
};

TEST_F(CrashConsistencyTest, SigkillWhilePublishingLosesNothingAcknowledged) {
  const int64_t rounds = EnvInt("ANORAND_CRASH_ROUNDS", 100);
  const uint64_t seed =
      static_cast<uint64_t>(EnvInt("ANORAND_CRASH_SEED", std::random_device()() % 1000000007));
  std::printf("crash consistency: seed %llu, %lld kill points (replay: ANORAND_CRASH_SEED=%llu)\n",
              static_cast<unsigned long long>(seed), static_cast<long long>(rounds),
              static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  const std::vector<std::string> flags = {"--poll_seconds=0", "--drain_seconds=1"};
  {  // Two versions to start from.
    ServerProcess server(root_, dir_.File("seed"), flags);
    ASSERT_TRUE(server.started()) << server.Log();
    auto stub = v1::Models::NewStub(server.NewChannel());
    for (int i = 0; i < 2; ++i) {
      Op op{Op::kImport, i, kAliases[i], 0};
      ASSERT_TRUE(ImportModel(stub.get(), "", kModel, sources_[i], op.alias, &op.version).ok());
      expected_.Apply(op, sources_);
    }
    ASSERT_EQ(server.Terminate(60), 0) << server.Log();
  }
  const Dataset train = DemoData(300, kD, 5);
  int killed_in_flight = 0, training_rounds = 0, job_leftovers = 0, left_temps = 0;
  for (int64_t round = 0; round <= rounds; ++round) {
    const std::string context =
        "round " + std::to_string(round) + " (seed " + std::to_string(seed) + ")";
    ServerProcess server(root_, dir_.File("round-" + std::to_string(round)), flags);
    ASSERT_TRUE(server.started()) << context << ": " << server.Log();
    const StoreState st = ReadAndCheckStore(server, root_, kModel, kD, context);
    CheckAgainstAcknowledged(st, context);
    job_leftovers = st.job_leftovers;
    if (::testing::Test::HasFailure()) {
      std::printf("%s: server log:\n%s\n", context.c_str(), server.Log().c_str());
      return;
    }
    if (round == rounds) {
      EXPECT_EQ(server.Terminate(60), 0) << server.Log();
      break;
    }
    const int mode = static_cast<int>(rng() % 6);  // 0-1 delay, 2-3 folder event, 4-5 training
    FolderEvents events(root_ + "/" + kModel);
    if (mode >= 4) {
      ++training_rounds;
      v1::Job job;
      auto stub = v1::Training::NewStub(server.NewChannel());
      grpc::Status s = SubmitDenseJob(stub.get(), "", kModel, train, 3, "canary", &job);
      ASSERT_TRUE(s.ok()) << context << ": " << s.error_message();
      jobs_.insert(job.id());
    }
    killed_ = false;
    ready_ = false;
    std::thread publisher([&, s = rng()] { Publish(server, s, mode < 4); });
    const auto connect_by = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!ready_.load() && std::chrono::steady_clock::now() < connect_by)
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    std::string how;
    // The kill lands at a random moment: these sleeps are the test's input.
    if (mode <= 1 || mode == 5) {  // a random moment
      const int64_t us = static_cast<int64_t>(rng() % (mode == 5 ? 1500000 : 25000));
      std::this_thread::sleep_for(std::chrono::microseconds(us));
      how = "after " + std::to_string(us) + " us";
    } else {  // a change of the folder, then a little more
      const int k = mode == 4 ? 1 : 1 + static_cast<int>(rng() % 12);
      std::optional<std::string> e;
      for (int i = 0; i < k; ++i) {
        do e = events.Next(60);
        while (e && mode == 4 && (e->empty() || e->back() != '>' || !std::isdigit((*e)[0])));
        if (!e) break;
      }
      const int64_t us = static_cast<int64_t>(rng() % (mode == 4 ? 3000 : 1000));
      std::this_thread::sleep_for(std::chrono::microseconds(us));
      how = (e ? "event " + std::to_string(k) + " '" + *e + "'" : "no event") + " + " +
            std::to_string(us) + " us";
    }
    killed_ = true;
    const int code = server.Kill();
    publisher.join();
    ASSERT_EQ(code, 128 + SIGKILL) << context;
    killed_in_flight += inflight_.has_value();
    // What the kill left half-written; the restart must clean it up.
    const int temps = CountTempEntries(root_ + "/" + kModel);
    left_temps += temps > 0;
    std::printf("%s: SIGKILL %s; %zu calls acknowledged, %d temp entries left, in flight: %s\n",
                context.c_str(), how.c_str(), acked_.size(), temps,
                !inflight_                       ? "none"
                : inflight_->kind == Op::kImport ? "import"
                : inflight_->kind == Op::kAlias  ? "alias move"
                                                 : "delete");
  }
  std::printf(
      "crash consistency: %lld kill points (%d during a call, %d with training), "
      "%d unacknowledged imports found published, %zu training versions seen, "
      "%zu jobs killed after their publish and found SUCCEEDED at the restart\n",
      static_cast<long long>(rounds), killed_in_flight, training_rounds, inflight_seen_,
      training_published_.size(), confirmed_after_restart_.size());
  std::printf(
      "crash consistency: %d kills left temp entries in the model folder (all removed "
      "at the next start); %d temp files in .jobs/ (job records; not cleaned)\n",
      left_temps, job_leftovers);
}

// The clean-up at start and at every poll is safe for replicas sharing a
// store: a second server scanning every 10 ms, restarted now and then,
// never removes a write the first one has in progress (each import, alias
// write and delete of the first one succeeds), and both list the same.
TEST_F(CrashConsistencyTest, CleanupLeavesAnotherServersWritesAlone) {
  ServerProcess a(root_, dir_.File("a"), {"--poll_seconds=0"});
  ASSERT_TRUE(a.started()) << a.Log();
  auto stub = v1::Models::NewStub(a.NewChannel());
  std::unique_ptr<ServerProcess> b;
  for (int i = 0; i < 120; ++i) {
    if (i % 40 == 0) {
      b.reset();  // SIGKILL
      b = std::make_unique<ServerProcess>(root_, dir_.File("b" + std::to_string(i)),
                                          std::vector<std::string>{"--poll_seconds=0.01"});
      ASSERT_TRUE(b->started()) << b->Log();
    }
    int64_t v = 0;
    grpc::Status s = ImportModel(stub.get(), "", kModel, sources_[i % 3], kAliases[i % 2], &v);
    ASSERT_TRUE(s.ok()) << "import " << i << ": " << s.error_message();
    if (v > 3) {
      grpc::ClientContext ctx;
      Prepare(&ctx, 60);
      v1::DeleteVersionRequest req;
      req.set_model_name(kModel);
      req.set_version(v - 3);
      v1::DeleteVersionResponse resp;
      s = stub->DeleteVersion(&ctx, req, &resp);
      ASSERT_TRUE(s.ok()) << "delete " << v - 3 << ": " << s.error_message();
    }
  }
  // b sees what a wrote once it has polled again.
  std::string a_list, b_list;
  auto versions = [](const ServerProcess& server) {
    auto st = v1::Models::NewStub(server.NewChannel());
    grpc::ClientContext ctx;
    Prepare(&ctx, 60);
    v1::ListModelsResponse list;
    EXPECT_TRUE(st->ListModels(&ctx, v1::ListModelsRequest(), &list).ok());
    return list.DebugString();
  };
  a_list = versions(a);
  EXPECT_TRUE(WaitUntil([&] { return (b_list = versions(*b)) == a_list; }, 60))
      << "a: " << a_list << "\nb: " << b_list;
  EXPECT_EQ(CountTempEntries(root_ + "/" + kModel), 0);
}

}  // namespace
}  // namespace anorand::test_support
