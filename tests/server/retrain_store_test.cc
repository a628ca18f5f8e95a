// RetrainStore's history file on a real folder: reads while another thread
// appends, a torn line followed by an append, and the tail read that keeps a
// long history readable.
#include "server/retrain_store.h"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "gtest/gtest.h"
#include "tests/support/test_util.h"

namespace anorand {
namespace {

using test_support::TempDir;

v1::ModelEvent Event(int64_t version) {
  v1::ModelEvent e;
  e.set_kind(v1::MODEL_EVENT_HELD);
  e.set_version(version);
  e.set_detail(std::string(200, 'x'));
  return e;
}

TEST(RetrainStoreTest, HistoryReadsWhileAnotherThreadAppends) {
  TempDir dir;
  std::filesystem::create_directories(dir.path() + "/m");
  RetrainStore store{ModelStore(dir.path())};
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int i = 1; i <= 400; ++i) ASSERT_TRUE(store.Append("m", Event(i)).ok());
    done = true;
  });
  size_t seen = 0;
  int reads = 0;
  while (!done || reads == 0) {
    auto history = store.History("m", 1000);
    ASSERT_TRUE(history.ok()) << history.status();
    ASSERT_GE(history->size(), seen) << "a read lost events an earlier read returned";
    seen = history->size();
    for (size_t i = 0; i < history->size(); ++i) {
      ASSERT_EQ((*history)[i].version(), static_cast<int64_t>(i + 1));
    }
    ++reads;
  }
  writer.join();
  auto history = store.History("m", 1000);
  ASSERT_TRUE(history.ok()) << history.status();
  EXPECT_EQ(history->size(), 400u);
}

TEST(RetrainStoreTest, ATornLineIsSkippedAndTheNextEventKept) {
  TempDir dir;
  std::filesystem::create_directories(dir.path() + "/m");
  RetrainStore store{ModelStore(dir.path())};
  ASSERT_TRUE(store.Append("m", Event(1)).ok());
  {
    std::ofstream f(dir.path() + "/m/history.jsonl", std::ios::app);
    f << "{\"kind\":\"MODEL_EVENT_KI";
  }
  ASSERT_TRUE(store.Append("m", Event(2)).ok());
  auto history = store.History("m", 10);
  ASSERT_TRUE(history.ok()) << history.status();
  ASSERT_EQ(history->size(), 2u);
  EXPECT_EQ((*history)[0].version(), 1);
  EXPECT_EQ((*history)[1].version(), 2);
}

TEST(ModelStoreTest, ReadModelFileTailKeepsWholeLinesThatFit) {
  TempDir dir;
  std::filesystem::create_directories(dir.path() + "/m");
  const ModelStore store(dir.path());
  ASSERT_TRUE(store.AppendModelFile("m", "log", "first line\nsecond\nthird\n").ok());
  auto all = store.ReadModelFileTail("m", "log", 100);
  ASSERT_TRUE(all.ok() && *all);
  EXPECT_EQ(**all, "first line\nsecond\nthird\n");
  // The last 16 bytes start inside "first line": that cut line is dropped.
  auto tail = store.ReadModelFileTail("m", "log", 16);
  ASSERT_TRUE(tail.ok() && *tail);
  EXPECT_EQ(**tail, "second\nthird\n");
  auto missing = store.ReadModelFileTail("m", "absent", 16);
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(*missing);
}

}  // namespace
}  // namespace anorand
