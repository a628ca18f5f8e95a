#include "tests/reliability/store_check.h"

#include <filesystem>
#include <set>

#include "gtest/gtest.h"
#include "model/model_file.h"
#include "nlohmann/json.hpp"
#include "tests/support/subprocess.h"

namespace anorand::test_support {
namespace {
namespace fs = std::filesystem;

constexpr char kModelFileName[] = "model.anorand";  // server/model_store.h

bool IsVersionName(const std::string& s) {
  if (s.empty() || s[0] == '0' || s.size() > 18) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

// Temp names of the store's atomic writes: ".tmp-..." folders (a publish
// or a delete in progress) and "<file>.tmp.<pid>.<n>" files.
bool IsTempName(const std::string& s) {
  return s.rfind(".tmp-", 0) == 0 || s.find(".tmp.") != std::string::npos;
}

void CheckFolder(const std::string& root, const std::string& model, StoreState* state,
                 const std::string& context) {
  for (const auto& e : fs::directory_iterator(root)) {
    const std::string name = e.path().filename().string();
    if (IsTempName(name)) ++state->leftovers;
    EXPECT_FALSE(IsTempName(name)) << context << ": left in the store root: " << name;
    EXPECT_TRUE(name == model || name[0] == '.') << context << ": unexpected " << name;
  }
  if (fs::exists(root + "/.jobs")) {
    for (const auto& e : fs::directory_iterator(root + "/.jobs"))
      state->job_leftovers += IsTempName(e.path().filename().string());
  }
  std::set<int64_t> on_disk;
  for (const auto& e : fs::directory_iterator(root + "/" + model)) {
    const std::string name = e.path().filename().string();
    if (IsTempName(name)) {
      ++state->leftovers;
      ADD_FAILURE() << context << ": temp entry left in the model folder after start-up: " << name;
    } else if (IsVersionName(name)) {
      on_disk.insert(std::stoll(name));
      std::set<std::string> inside;
      for (const auto& f : fs::directory_iterator(e.path())) inside.insert(f.path().filename());
      EXPECT_EQ(inside, std::set<std::string>({kModelFileName})) << context << ": version " << name;
      const std::string file = e.path().string() + "/" + kModelFileName;
      auto loaded = LoadModelFile(file);
      EXPECT_TRUE(loaded.ok()) << context << ": " << loaded.status().message();
      const int64_t v = std::stoll(name);
      if (state->bytes.count(v)) {
        EXPECT_TRUE(ReadWholeFile(file) == state->bytes[v])
            << context << ": version " << v << " exported bytes differ from " << file;
      }
    } else {
      EXPECT_TRUE(name == "aliases.json" || name[0] == '.') << context << ": unexpected " << name;
    }
  }
  std::set<int64_t> listed;
  for (const auto& [v, info] : state->versions) listed.insert(v);
  EXPECT_EQ(on_disk, listed) << context << ": numbered folders vs listed versions";

  std::map<std::string, int64_t> file_aliases;
  const std::string aliases_path = root + "/" + model + "/aliases.json";
  if (fs::exists(aliases_path)) {
    auto j = nlohmann::json::parse(ReadWholeFile(aliases_path), nullptr, false);
    ASSERT_TRUE(j.is_object()) << context << ": aliases.json is not a JSON object";
    for (auto it = j.begin(); it != j.end(); ++it)
      file_aliases[it.key()] = it.value().get<int64_t>();
  }
  EXPECT_EQ(file_aliases, state->aliases) << context << ": aliases.json vs the server";
}

}  // namespace

int CountTempEntries(const std::string& dir) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) n += IsTempName(e.path().filename().string());
  return n;
}

StoreState ReadAndCheckStore(const ServerProcess& server, const std::string& root,
                             const std::string& model, int d, const std::string& context) {
  StoreState state;
  auto channel = server.NewChannel();
  auto models = v1::Models::NewStub(channel);
  auto scoring = v1::Scoring::NewStub(channel);
  auto training = v1::Training::NewStub(channel);
  v1::ListModelsResponse list;
  {
    grpc::ClientContext ctx;
    Prepare(&ctx, 60);
    grpc::Status s = models->ListModels(&ctx, v1::ListModelsRequest(), &list);
    EXPECT_TRUE(s.ok()) << context << ": ListModels: " << s.error_message();
  }
  for (const auto& m : list.models()) {
    EXPECT_EQ(m.name(), model) << context << ": unexpected model";
    if (m.name() != model) continue;
    for (const auto& v : m.versions()) state.versions[v.version()] = v;
    for (const auto& [alias, v] : m.aliases()) state.aliases[alias] = v;
  }
  int64_t highest = 0;
  for (const auto& [v, info] : state.versions) {
    highest = std::max(highest, v);
    EXPECT_EQ(info.state(), v1::VERSION_STATE_READY)
        << context << ": version " << v << " did not load: " << info.error();
    // Loads: a pinned Score answers from that very version.
    grpc::ClientContext ctx;
    Prepare(&ctx, 60);
    v1::ScoreResponse resp;
    grpc::Status s = scoring->Score(&ctx, ScoreRequestFor(model, v, "", 4, d, v), &resp);
    EXPECT_TRUE(s.ok()) << context << ": Score version " << v << ": " << s.error_message();
    if (s.ok()) {
      EXPECT_EQ(resp.model_version(), v) << context;
      EXPECT_EQ(resp.scores_size(), 4) << context;
    }
    // Verifies: the export is the file, and its checksum and contents hold.
    std::string bytes;
    s = ExportModel(models.get(), "", model, v, &bytes);
    EXPECT_TRUE(s.ok()) << context << ": Export version " << v << ": " << s.error_message();
    auto parsed = ParseModel(bytes, "export");
    EXPECT_TRUE(parsed.ok()) << context << ": version " << v << ": " << parsed.status().message();
    state.bytes[v] = bytes;
  }
  for (const auto& [alias, v] : state.aliases) {
    EXPECT_TRUE(state.versions.count(v))
        << context << ": alias " << alias << " points at missing version " << v;
  }
  if (highest > 0) {  // no selector: the newest version serves
    grpc::ClientContext ctx;
    Prepare(&ctx, 60);
    v1::ScoreResponse resp;
    grpc::Status s = scoring->Score(&ctx, ScoreRequestFor(model, 0, "", 2, d, 1), &resp);
    EXPECT_TRUE(s.ok()) << context << ": Score latest: " << s.error_message();
    EXPECT_EQ(resp.model_version(), highest) << context;
  }
  {
    grpc::ClientContext ctx;
    Prepare(&ctx, 60);
    v1::ListJobsRequest req;
    req.set_page_size(1000);
    v1::ListJobsResponse jobs;
    grpc::Status s = training->ListJobs(&ctx, req, &jobs);
    EXPECT_TRUE(s.ok()) << context << ": ListJobs: " << s.error_message();
    for (const auto& j : jobs.jobs()) {
      EXPECT_TRUE(j.state() == v1::JOB_STATE_SUCCEEDED || j.state() == v1::JOB_STATE_FAILED ||
                  j.state() == v1::JOB_STATE_CANCELLED)
          << context << ": job " << j.id() << " is " << v1::JobState_Name(j.state());
      state.jobs.push_back(j);
    }
  }
  CheckFolder(root, model, &state, context);
  return state;
}

}  // namespace anorand::test_support
