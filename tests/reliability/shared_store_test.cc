// Two real anorand-server processes as replicas: one --model_dir shared by
// both (the documented replica setup) and one port they both ask for.
//   - Alias moves sent to both at once are all kept in aliases.json: each
//     read-modify-write holds the store's cross-process alias lock.
//   - A second server on a port already taken exits at start (code 2, a
//     message naming --grpc_address) instead of sharing the port through
//     SO_REUSEPORT and taking some of the first one's connections.
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/model_file.h"
#include "nlohmann/json.hpp"
#include "tests/reliability/server_process.h"
#include "tests/support/subprocess.h"
#include "tests/support/test_util.h"

namespace anorand::test_support {
namespace {

using ::testing::HasSubstr;

constexpr int kD = 6;
constexpr int kMovesPerServer = 20;

grpc::Status SetAlias(v1::Models::Stub* stub, const std::string& alias, int64_t version) {
  grpc::ClientContext ctx;
  Prepare(&ctx, 30);
  v1::SetAliasRequest req;
  req.set_model_name("m");
  req.set_alias(alias);
  req.set_version(version);
  v1::ModelInfo info;
  return stub->SetAlias(&ctx, req, &info);
}

TEST(SharedStoreTest, AliasMovesSentToTwoReplicasAtOnceAreAllKept) {
  TempDir dir;
  const std::string store = dir.File("models");
  // Two versions in the store before either replica starts, so both load
  // them at their first scan (no polling needed).
  {
    ServerProcess seed(store, dir.File("seed"));
    ASSERT_TRUE(seed.started()) << seed.Log();
    auto stub = v1::Models::NewStub(seed.NewChannel());
    const std::string bytes = SerializeModel(TinyModel(kD, 1));
    int64_t v = 0;
    ASSERT_TRUE(ImportModel(stub.get(), "", "m", bytes, "", &v).ok());
    ASSERT_TRUE(ImportModel(stub.get(), "", "m", bytes, "", &v).ok());
    ASSERT_EQ(v, 2);
    seed.Terminate(30);
  }
  ServerProcess a(store, dir.File("a"), {"--poll_seconds=0"});
  ServerProcess b(store, dir.File("b"), {"--poll_seconds=0"});
  ASSERT_TRUE(a.started()) << a.Log();
  ASSERT_TRUE(b.started()) << b.Log();

  // Each replica gets its own 20 aliases, each moved from version 1 to 2:
  // 40 moves per replica, all at once from two threads.
  absl::Notification go;
  std::vector<std::string> failures[2];
  auto mover = [&](const ServerProcess& server, const std::string& prefix, int slot) {
    auto stub = v1::Models::NewStub(server.NewChannel());
    go.WaitForNotification();
    for (int i = 0; i < kMovesPerServer; ++i) {
      const std::string alias = prefix + std::to_string(i);
      for (int64_t version : {1, 2}) {
        grpc::Status s = SetAlias(stub.get(), alias, version);
        if (!s.ok()) failures[slot].push_back(alias + ": " + s.error_message());
      }
    }
  };
  std::thread ta(mover, std::cref(a), "from-a-", 0);
  std::thread tb(mover, std::cref(b), "from-b-", 1);
  go.Notify();
  ta.join();
  tb.join();
  EXPECT_THAT(failures[0], ::testing::IsEmpty());
  EXPECT_THAT(failures[1], ::testing::IsEmpty());

  const nlohmann::json on_disk = nlohmann::json::parse(ReadWholeFile(store + "/m/aliases.json"));
  std::vector<std::string> lost;
  for (const char* prefix : {"from-a-", "from-b-"}) {
    for (int i = 0; i < kMovesPerServer; ++i) {
      const std::string alias = prefix + std::to_string(i);
      if (!on_disk.contains(alias) || on_disk[alias] != 2) lost.push_back(alias);
    }
  }
  EXPECT_THAT(lost, ::testing::IsEmpty()) << on_disk.dump();
  EXPECT_EQ(on_disk.size(), 2u * kMovesPerServer);
}

TEST(SharedStoreTest, SecondServerOnATakenPortExitsTwoWithAMessage) {
  TempDir dir;
  ServerProcess first(dir.File("models-1"), dir.File("first"));
  ASSERT_TRUE(first.started()) << first.Log();
  const std::string address = "127.0.0.1:" + std::to_string(first.port());
  std::string out, err;
  // A server that wrongly starts would run until the timeout: -1.
  const int code = RunCommand({ServerBinary(), "--grpc_address=" + address,
                               "--model_dir=" + dir.File("models-2"), "--metrics_address="},
                              &out, &err, 60);
  EXPECT_EQ(code, 2) << out << err;
  EXPECT_THAT(err, HasSubstr("cannot listen on " + address));
  EXPECT_THAT(err, HasSubstr("--grpc_address"));
  EXPECT_THAT(out, ::testing::Not(HasSubstr("listening")));
  // Every new connection still reaches the first server.
  for (int i = 0; i < 20; ++i) {
    auto stub = v1::Models::NewStub(first.NewChannel());
    grpc::ClientContext ctx;
    Prepare(&ctx, 30);
    v1::ListModelsResponse resp;
    EXPECT_TRUE(stub->ListModels(&ctx, v1::ListModelsRequest(), &resp).ok());
  }
}

}  // namespace
}  // namespace anorand::test_support
