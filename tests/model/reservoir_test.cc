// The reservoir of recent records (model/reservoir.h): bounded, uniform
// within a period, halves that rotate and expire by time, a width change
// that starts over, and a file form that round-trips and refuses damage.
#include "model/reservoir.h"

#include <cmath>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace anorand {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kHour = 3600 * 1000;
constexpr int64_t kT0 = 1'800'000'000'000;  // any Unix ms

// rows records of one feature, numbered from `first`.
std::vector<float> Numbered(int64_t first, int64_t rows) {
  std::vector<float> x(static_cast<size_t>(rows));
  for (int64_t i = 0; i < rows; ++i) x[i] = static_cast<float>(first + i);
  return x;
}

TEST(ReservoirTest, NeverHoldsMoreThanItsCapacityAndKeepsEveryRecordUntilFull) {
  Reservoir r(100, kHour, 1);
  const auto x = Numbered(0, 30);
  r.Observe(x.data(), 30, 1, kT0);
  ReservoirSnapshot s = r.Snapshot(kT0);
  EXPECT_EQ(s.rows(), 30);
  EXPECT_EQ(s.current.x, x);
  for (int b = 0; b < 100; ++b) {
    const auto more = Numbered(30 + b * 37, 37);
    r.Observe(more.data(), 37, 1, kT0 + b);
  }
  s = r.Snapshot(kT0 + 100);
  EXPECT_EQ(s.rows(), 50);  // one half: capacity / 2
  EXPECT_EQ(s.seen(), 30 + 100 * 37);
}

TEST(ReservoirTest, WideRecordsAreBoundedByBytes) {
  // 100 rows allowed, but 4,000 bytes in all: 10 rows of 50 features per half.
  Reservoir r(100, kHour, 11, 4000);
  EXPECT_EQ(r.HalfRows(50), 10);
  const std::vector<float> x(50 * 64, 1.0f);
  r.Observe(x.data(), 64, 50, kT0);
  EXPECT_EQ(r.Snapshot(kT0).rows(), 10);
  EXPECT_EQ(r.HalfRows(1), 50);
}

TEST(ReservoirTest, EachRecordOfAPeriodIsKeptWithTheSameProbability) {
  // 1,000 records into a half of 100, 2,000 times: each record's share of
  // the trials is 0.1, and the early, middle and late thirds agree.
  constexpr int kTrials = 2000;
  std::vector<int> kept(1000, 0);
  const auto x = Numbered(0, 1000);
  for (int t = 0; t < kTrials; ++t) {
    Reservoir r(200, kHour, 100 + t);
    for (int b = 0; b < 1000; b += 50) r.Observe(x.data() + b, 50, 1, kT0);
    for (float v : r.Snapshot(kT0).current.x) ++kept[static_cast<int>(v)];
  }
  double third[3] = {0, 0, 0};
  for (int i = 0; i < 999; ++i) third[i / 333] += kept[i];
  for (double& t : third) t /= 333.0 * kTrials;
  for (double t : third) EXPECT_NEAR(t, 0.1, 0.005);  // sd of a third's share is about 0.0012
}

TEST(ReservoirTest, HalvesRotateByPeriodAndExpireAfterTwo) {
  Reservoir r(20, kHour, 2);
  const auto a = Numbered(0, 5), b = Numbered(100, 5);
  r.Observe(a.data(), 5, 1, kT0);
  r.Observe(b.data(), 5, 1, kT0 + kHour);  // the first half's period has ended
  ReservoirSnapshot s = r.Snapshot(kT0 + kHour);
  EXPECT_EQ(s.previous.x, a);
  EXPECT_EQ(s.current.x, b);
  // The previous half started two periods ago: dropped; the current one
  // rotates into its place.
  s = r.Snapshot(kT0 + 2 * kHour);
  EXPECT_EQ(s.previous.x, b);
  EXPECT_TRUE(s.current.x.empty());
  s = r.Snapshot(kT0 + 4 * kHour);
  EXPECT_EQ(s.rows(), 0);
}

TEST(ReservoirTest, ARecordOfAnotherWidthStartsOver) {
  Reservoir r(20, kHour, 3);
  const auto x = Numbered(0, 12);
  r.Observe(x.data(), 6, 2, kT0);
  r.Observe(x.data(), 4, 3, kT0 + 1);
  const ReservoirSnapshot s = r.Snapshot(kT0 + 1);
  EXPECT_EQ(s.cols, 3);
  EXPECT_EQ(s.rows(), 4);
  EXPECT_EQ(s.seen(), 4);
}

TEST(ReservoirTest, TheFileFormRoundTripsAndRestoreContinuesTheCount) {
  Reservoir r(10, kHour, 4);
  const auto x = Numbered(0, 40);
  r.Observe(x.data(), 20, 2, kT0);
  const ReservoirSnapshot s = r.Snapshot(kT0);
  auto parsed = ParseReservoir(SerializeReservoir(s), "t");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->cols, 2);
  EXPECT_EQ(parsed->current.x, s.current.x);
  EXPECT_EQ(parsed->current.seen, 20);
  EXPECT_EQ(parsed->current.start_ms, kT0);

  // A smaller reservoir keeps a subset of the persisted rows.
  Reservoir small(4, kHour, 5);
  small.Restore(*parsed, kT0 + 1);
  const ReservoirSnapshot back = small.Snapshot(kT0 + 1);
  EXPECT_EQ(back.rows(), 2);
  EXPECT_EQ(back.current.seen, 20);
  for (size_t i = 0; i < back.current.x.size(); i += 2) {
    EXPECT_EQ(back.current.x[i + 1], back.current.x[i] + 1) << "rows must stay whole";
  }
  // A persisted state two periods old is dropped on restore.
  Reservoir late(10, kHour, 6);
  late.Restore(*parsed, kT0 + 2 * kHour);
  EXPECT_EQ(late.Snapshot(kT0 + 2 * kHour).rows(), 0);
}

TEST(ReservoirTest, DamagedFilesAreRefusedNamingTheFault) {
  Reservoir r(10, kHour, 7);
  const auto x = Numbered(0, 8);
  r.Observe(x.data(), 8, 1, kT0);
  const std::string good = SerializeReservoir(r.Snapshot(kT0));
  std::string flipped = good;
  flipped[40] ^= 1;
  EXPECT_THAT(std::string(ParseReservoir(flipped, "f").status().message()), HasSubstr("CRC"));
  EXPECT_THAT(std::string(ParseReservoir(good.substr(0, 30), "f").status().message()),
              HasSubstr("shorter than its header"));
  std::string magic = good;
  magic[0] = 'X';
  EXPECT_THAT(std::string(ParseReservoir(magic, "f").status().message()), HasSubstr("bad magic"));
  EXPECT_THAT(std::string(ParseReservoir(good.substr(0, good.size() - 8), "f").status().message()),
              HasSubstr("CRC"));
}

TEST(ReservoirTest, RowsForTrainingJoinFreshHalvesAndRefuseMixedWidths) {
  Reservoir a(10, kHour, 8), b(10, kHour, 9);
  const auto x = Numbered(0, 6);
  a.Observe(x.data(), 3, 2, kT0);
  b.Observe(x.data(), 2, 2, kT0 + kHour);
  auto d = ReservoirRows({a.Snapshot(kT0 + kHour), b.Snapshot(kT0 + kHour)}, kHour, kT0 + kHour);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->rows, 5);
  EXPECT_EQ(d->cols, 2);
  // At two periods, a's records (scored at kT0) have expired.
  d = ReservoirRows({a.Snapshot(kT0 + 2 * kHour), b.Snapshot(kT0 + 2 * kHour)}, kHour, kT0 + 2 * kHour);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->rows, 2);
  Reservoir c(10, kHour, 10);
  c.Observe(x.data(), 2, 3, kT0 + kHour);
  d = ReservoirRows({b.Snapshot(kT0 + kHour), c.Snapshot(kT0 + kHour)}, kHour, kT0 + kHour);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(d.status().message()), HasSubstr("disagree"));
  EXPECT_EQ(ReservoirRows({}, kHour, kT0).status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace anorand
