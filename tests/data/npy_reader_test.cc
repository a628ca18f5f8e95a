#include "model/data/npy_reader.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/data/data_loader.h"
#include "tests/data/test_fixtures.h"
#include "tests/support/expect_error.h"

namespace anorand {
namespace {

using test_support::ExpectError;

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using test_support::Npy;
using test_support::NpyWithDict;
using test_support::RawBytes;

std::string F8(const std::vector<double>& v) { return RawBytes(v); }

// ---------------------------------------------------------------- NPY ok

TEST(NpyTest, Float64COrder2D) {
  auto a =
      ParseNpy(Npy("<f8", false, "(2, 3)", F8({1, 2, 3, 4, 5, 6})), "a.npy");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_THAT(a->shape, ElementsAre(2, 3));
  EXPECT_THAT(a->data, ElementsAre(1, 2, 3, 4, 5, 6));
}

struct DtypeCase {
  std::string descr;
  std::string data;
  std::vector<double> expected;
};

void PrintTo(const DtypeCase& c, std::ostream* os) { *os << c.descr; }

class NpyDtypeTest : public ::testing::TestWithParam<DtypeCase> {};

TEST_P(NpyDtypeTest, Decodes) {
  const DtypeCase& c = GetParam();
  const std::string shape = "(" + std::to_string(c.expected.size()) + ",)";
  auto a = ParseNpy(Npy(c.descr, false, shape, c.data), "t.npy");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->data, c.expected);
}

INSTANTIATE_TEST_SUITE_P(
    AllDtypes, NpyDtypeTest,
    ::testing::Values(
        DtypeCase{"<f4", RawBytes(std::vector<float>{1.5f, -2}), {1.5, -2}},
        DtypeCase{
            "<f8", RawBytes(std::vector<double>{0.1, -3e300}), {0.1, -3e300}},
        DtypeCase{"|i1", RawBytes(std::vector<int8_t>{-128, 127}), {-128, 127}},
        DtypeCase{"<i1", RawBytes(std::vector<int8_t>{-5}), {-5}},
        DtypeCase{
            "<i2", RawBytes(std::vector<int16_t>{-32768, 7}), {-32768, 7}},
        DtypeCase{
            "<i4", RawBytes(std::vector<int32_t>{-70000, 1}), {-70000, 1}},
        DtypeCase{"<i8",
                  RawBytes(std::vector<int64_t>{-(int64_t{1} << 40), 0}),
                  {-1099511627776.0, 0}},
        DtypeCase{"|u1", RawBytes(std::vector<uint8_t>{0, 255}), {0, 255}},
        DtypeCase{"<u1", RawBytes(std::vector<uint8_t>{200}), {200}},
        DtypeCase{"<u2", RawBytes(std::vector<uint16_t>{65535}), {65535}},
        DtypeCase{"<u4", RawBytes(std::vector<uint32_t>{4000000000u}), {4e9}},
        DtypeCase{"<u8",
                  RawBytes(std::vector<uint64_t>{uint64_t{1} << 63}),
                  {9223372036854775808.0}},
        DtypeCase{"|b1", RawBytes(std::vector<uint8_t>{0, 1, 2}), {0, 1, 1}},
        DtypeCase{">i2", std::string("\xff\xfe\x01\x02", 4), {-2, 258}},
        DtypeCase{">f8", std::string("\x3f\xf0\0\0\0\0\0\0", 8), {1.0}},
        DtypeCase{">u4", std::string("\0\0\x01\0", 4), {256}},
        DtypeCase{">i1", RawBytes(std::vector<int8_t>{-1}), {-1}}),
    [](const ::testing::TestParamInfo<DtypeCase>& info) {
      std::string name = info.param.descr;
      const char order = name[0];
      name = name.substr(1) + (order == '<'   ? "_le"
                               : order == '>' ? "_be"
                                              : "_na");
      return name;
    });

TEST(NpyTest, FortranOrderInt16ConvertedToCOrder) {
  // A 3 x 2 matrix [[1, 2], [3, 4], [5, 6]] stored column by column.
  const std::vector<int16_t> columns = {1, 3, 5, 2, 4, 6};
  auto a = ParseNpy(Npy("<i2", true, "(3, 2)", RawBytes(columns)), "f.npy");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_THAT(a->shape, ElementsAre(3, 2));
  EXPECT_THAT(a->data, ElementsAre(1, 2, 3, 4, 5, 6));
}

TEST(NpyTest, FortranOrder1DUnchanged) {
  auto a = ParseNpy(Npy("<f8", true, "(3,)", F8({1, 2, 3})), "f.npy");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_THAT(a->data, ElementsAre(1, 2, 3));
}

TEST(NpyTest, ZeroDimensional) {
  auto a = ParseNpy(Npy("<f8", false, "()", F8({42})), "s.npy");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(a->shape.empty());
  EXPECT_THAT(a->data, ElementsAre(42));
}

TEST(NpyTest, EmptyArray) {
  auto a = ParseNpy(Npy("<f8", false, "(0, 1000000000000)", ""), "e.npy");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_THAT(a->shape, ElementsAre(0, 1000000000000));
  EXPECT_TRUE(a->data.empty());
}

TEST(NpyTest, Versions2And3) {
  for (int major : {2, 3}) {
    auto a = ParseNpy(Npy("<f8", false, "(2,)", F8({1, 2}), major), "v.npy");
    ASSERT_TRUE(a.ok()) << major << ": " << a.status();
    EXPECT_THAT(a->data, ElementsAre(1, 2));
  }
}

TEST(NpyTest, HeaderVariants) {
  const std::string data = F8({1, 2});
  for (const std::string dict :
       {"{\"shape\": (1, 2), \"fortran_order\": False, \"descr\": \"<f8\"}",
        "{ 'fortran_order' :False,'shape':(1,2,),'descr':'<f8' , }",
        "{'descr':'<f8',\n 'fortran_order':False,\n 'shape':(1L, 2L)}",
        "{'descr': '<f8', 'fortran_order': False, 'shape': ( 1 , 2 ) }"}) {
    auto a = ParseNpy(NpyWithDict(dict, data), "h.npy");
    ASSERT_TRUE(a.ok()) << dict << ": " << a.status();
    EXPECT_THAT(a->shape, ElementsAre(1, 2));
  }
}

// ---------------------------------------------------------------- NPY bad

TEST(NpyTest, WrongMagic) {
  std::string bytes = Npy("<f8", false, "(1,)", F8({1}));
  bytes[1] = 'X';
  ExpectError(ParseNpy(bytes, "m.npy"), {"m.npy", "not an NPY file"});
  ExpectError(ParseNpy("", "m.npy"), {"not an NPY file"});
  ExpectError(ParseNpy("PK\3\4 not npy", "m.npy"), {"bad magic"});
}

TEST(NpyTest, TruncatedHeader) {
  const std::string full = Npy("<f8", false, "(1,)", F8({1}));
  ExpectError(ParseNpy(full.substr(0, 7), "t.npy"), {"truncated NPY header"});
  ExpectError(ParseNpy(full.substr(0, 9), "t.npy"), {"truncated NPY header"});
  ExpectError(ParseNpy(full.substr(0, 40), "t.npy"),
              {"t.npy", "truncated NPY header", "declares"});
  const std::string v2 = Npy("<f8", false, "(1,)", F8({1}), 2);
  ExpectError(ParseNpy(v2.substr(0, 11), "t.npy"),
              {"truncated NPY header length"});
}

TEST(NpyTest, UnsupportedVersion) {
  std::string bytes = Npy("<f8", false, "(1,)", F8({1}));
  bytes[6] = 4;
  ExpectError(ParseNpy(bytes, "v.npy"), {"unsupported NPY version 4.0"});
  bytes[6] = 1;
  bytes[7] = 1;
  ExpectError(ParseNpy(bytes, "v.npy"), {"unsupported NPY version 1.1"});
}

struct BadDict {
  std::string dict;
  std::string message;
};

void PrintTo(const BadDict& c, std::ostream* os) { *os << c.dict; }

class NpyBadDictTest : public ::testing::TestWithParam<BadDict> {};

TEST_P(NpyBadDictTest, Rejected) {
  auto a = ParseNpy(NpyWithDict(GetParam().dict, F8({1, 2})), "d.npy");
  ExpectError(a, {"d.npy: bad header dict", GetParam().message});
}

INSTANTIATE_TEST_SUITE_P(
    Syntax, NpyBadDictTest,
    ::testing::Values(
        BadDict{"'descr': '<f8'", "expected '{'"},
        BadDict{"{'descr': '<f8', 'fortran_order': False, 'shape': (2,)",
                "expected ',' or '}'"},
        BadDict{"{'descr': '<f8', 'shape': (2,)}",
                "missing key 'fortran_order'"},
        BadDict{"{'fortran_order': False, 'shape': (2,)}",
                "missing key 'descr'"},
        BadDict{"{'descr': '<f8', 'fortran_order': False}",
                "missing key 'shape'"},
        BadDict{"{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, "
                "'shape': (2,)}",
                "duplicate key 'descr'"},
        BadDict{"{'descr': '<f8', 'fortran_order': False, 'shape': (2,), "
                "'extra': 1}",
                "unexpected key \"extra\""},
        BadDict{"{'descr': '<f8', 'fortran_order': false, 'shape': (2,)}",
                "expected True or False"},
        BadDict{"{'descr': '<f8', 'fortran_order': Falsey, 'shape': (2,)}",
                "expected True or False"},
        BadDict{"{'descr': '<f8', 'fortran_order': False, 'shape': (2)}",
                "not a tuple"},
        BadDict{"{'descr': '<f8', 'fortran_order': False, 'shape': (-2,)}",
                "non-negative integer"},
        BadDict{"{'descr': '<f8', 'fortran_order': False, 'shape': (2.0,)}",
                "expected ',' or ')'"},
        BadDict{"{'descr': '<f8', 'fortran_order': False, 'shape': [2]}",
                "expected '('"},
        BadDict{"{'descr': '<f8', 'fortran_order': False, 'shape': (2,)} x",
                "unexpected text after '}'"},
        BadDict{"{'descr: '<f8', 'fortran_order': False, 'shape': (2,)}",
                "expected ':'"},
        BadDict{"{'descr': '<f8, 'fortran_order': False, 'shape': (2,)}",
                "expected ',' or '}'"},
        BadDict{"{'descr': '<f\\x38', 'fortran_order': False, 'shape': (2,)}",
                "escapes"},
        BadDict{"{'descr': '<f8', 'fortran_order': False, 'shape': "
                "(99999999999999999999,)}",
                "too large"},
        BadDict{"{'descr': '<f8', 'fortran_order': False, 'shape': (2,),,}",
                "expected a quoted string"},
        BadDict{"{'descr': [('a', '<f8')], 'fortran_order': False, "
                "'shape': (2,)}",
                "structured dtypes"},
        BadDict{"", "expected '{'"}),
    [](const ::testing::TestParamInfo<BadDict>& info) {
      return "Case" + std::to_string(info.index);
    });

TEST(NpyTest, UnsupportedDtypes) {
  for (const char* descr :
       {"<c16", "<f2", "<U5", "<M8", "f8", "=f8", "<i3", "<b2", "<f16"}) {
    ExpectError(ParseNpy(Npy(descr, false, "(2,)", F8({1, 2})), "d.npy"),
                {"d.npy: unsupported dtype", descr, "supported:"});
  }
  ExpectError(ParseNpy(Npy("|f8", false, "(2,)", F8({1, 2})), "d.npy"),
              {"byte order '|' is only valid for one-byte types"});
}

TEST(NpyTest, ObjectDtypeRefused) {
  for (const char* descr : {"|O", "<O8", "O"}) {
    ExpectError(ParseNpy(Npy(descr, false, "(2,)", F8({1, 2})), "o.npy"),
                {"o.npy", "pickled object arrays are not supported"});
  }
}

TEST(NpyTest, TooManyDimensions) {
  ExpectError(ParseNpy(Npy("<f8", false, "(1, 1, 2)", F8({1, 2})), "3.npy"),
              {"3 dimensions are not supported"});
}

TEST(NpyTest, HugeShapeRefusedBeforeAllocation) {
  ExpectError(
      ParseNpy(Npy("<f8", false, "(4294967296, 4294967296)", ""), "h.npy"),
      {"more than the limit of 2147483648 elements"});
  ExpectError(ParseNpy(Npy("|u1", false, "(2147483649,)", ""), "h.npy"),
              {"more than the limit"});
  ExpectError(ParseNpy(Npy("<f8", false,
                           "(9223372036854775807, 9223372036854775807)", ""),
                       "h.npy"),
              {"more than the limit"});
}

TEST(NpyTest, DataSizeMismatch) {
  const std::string data = F8({1, 2, 3, 4, 5, 6});
  ExpectError(
      ParseNpy(Npy("<f8", false, "(2, 3)", data.substr(0, 47)), "s.npy"),
      {"s.npy: data is 47 bytes but shape (2, 3) of <f8 needs exactly 48"});
  ExpectError(ParseNpy(Npy("<f8", false, "(2, 3)", data + "x"), "s.npy"),
              {"data is 49 bytes"});
  ExpectError(ParseNpy(Npy("<f4", false, "(5,)", data), "s.npy"),
              {"shape (5,) of <f4 needs exactly 20"});
}

TEST(NpyTest, NanRejectedWithRowAndColumn) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  ExpectError(
      ParseNpy(Npy("<f8", false, "(2, 3)", F8({1, 2, 3, 4, nan, 6})), "n.npy"),
      {"n.npy: non-finite value nan at index 4 (row 1, column 1)"});
  // Fortran order: the index is reported in C order.
  ExpectError(
      ParseNpy(Npy("<f8", true, "(2, 3)", F8({1, 2, 3, nan, 5, 6})), "n.npy"),
      {"at index 4 (row 1, column 1)"});
}

TEST(NpyTest, InfRejected1D) {
  const float inf = std::numeric_limits<float>::infinity();
  ExpectError(ParseNpy(Npy("<f4", false, "(3,)",
                           RawBytes(std::vector<float>{0, 1, -inf})),
                       "i.npy"),
              {"non-finite value -inf at index 2"});
}

TEST(NpyTest, ParseNpyFile) {
  test_support::TempDir dir;
  const std::string path = dir.File("a.npy");
  ASSERT_TRUE(test_support::WriteFile(path, Npy("<f8", false, "(2,)", F8({3, 4}))));
  auto a = ParseNpyFile(path);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_THAT(a->data, ElementsAre(3, 4));
  ASSERT_TRUE(test_support::WriteFile(path, "junk"));
  ExpectError(ParseNpyFile(path), {path, "not an NPY file"});
  auto missing = ParseNpyFile(dir.File("none.npy"));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
}

// Random mutations of a valid file only ever yield a status.
TEST(NpyTest, MutatedInputsNeverCrash) {
  const std::string valid = Npy(
      "<i2", true, "(3, 2)", RawBytes(std::vector<int16_t>{1, 2, 3, 4, 5, 6}));
  std::mt19937_64 rng(11);
  for (int i = 0; i < 5000; ++i) {
    std::string bytes = valid;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      bytes[rng() % bytes.size()] = static_cast<char>(rng() & 0xff);
    }
    if (rng() % 4 == 0) bytes.resize(rng() % bytes.size());
    auto a = ParseNpy(bytes, "fuzz");
    if (a.ok()) {
      int64_t count = 1;
      for (int64_t d : a->shape) count *= d;
      EXPECT_EQ(a->data.size(), static_cast<size_t>(count));
    } else {
      EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
    }
  }
}

// ---------------------------------------------------------------- NPZ

class NpzTest : public ::testing::Test {
 protected:

  // Writes members to a new archive and returns its path.
  std::string Zip(const std::string& name,
                  const std::vector<test_support::ZipMember>& members) {
    const std::string path = dir_.File(name);
    EXPECT_TRUE(test_support::WriteZip(path, members));
    return path;
  }

  static std::string XNpy() {
    // Fortran-order int16, 3 x 2: [[1, 2], [3, 4], [5, 6]], like ADBench.
    return Npy("<i2", true, "(3, 2)",
               RawBytes(std::vector<int16_t>{1, 3, 5, 2, 4, 6}));
  }
  static std::string YNpy() {
    return Npy("<i8", false, "(3,)", RawBytes(std::vector<int64_t>{0, 1, 0}));
  }

  test_support::TempDir dir_;
};

TEST_F(NpzTest, DeflateAndStoredMembers) {
  for (bool deflate : {true, false}) {
    const std::string path =
        Zip("d.npz", {{"X.npy", XNpy(), deflate}, {"y.npy", YNpy(), !deflate}});
    auto arrays = ReadNpz(path);
    ASSERT_TRUE(arrays.ok()) << arrays.status();
    ASSERT_EQ(arrays->size(), 2u);
    EXPECT_THAT(arrays->at("X").shape, ElementsAre(3, 2));
    EXPECT_THAT(arrays->at("X").data, ElementsAre(1, 2, 3, 4, 5, 6));
    EXPECT_THAT(arrays->at("y").data, ElementsAre(0, 1, 0));
  }
}

TEST_F(NpzTest, ParseNpzFromBytes) {
  const std::string bytes = test_support::ReadFile(
      Zip("b.npz", {{"X.npy", XNpy(), true}, {"y.npy", YNpy(), false}}));
  auto arrays = ParseNpz(bytes, "upload.npz");
  ASSERT_TRUE(arrays.ok()) << arrays.status();
  EXPECT_THAT(arrays->at("X").data, ElementsAre(1, 2, 3, 4, 5, 6));
  EXPECT_THAT(arrays->at("y").data, ElementsAre(0, 1, 0));
}

TEST_F(NpzTest, LargeDeflatedMember) {
  std::vector<double> values(300000);
  for (size_t i = 0; i < values.size(); ++i)
    values[i] = static_cast<double>(i % 977);
  const std::string path = Zip(
      "l.npz", {{"X.npy", Npy("<f8", false, "(100000, 3)", RawBytes(values))}});
  auto arrays = ReadNpz(path);
  ASSERT_TRUE(arrays.ok()) << arrays.status();
  EXPECT_EQ(arrays->at("X").data, values);
}

// Cancellation is polled while a member inflates: a 2.4 MB member is read in
// 64 KiB pieces, so the tenth poll comes before it is done, and the read
// stops there, naming the member; through LoadDataset too.
TEST_F(NpzTest, CancelStopsTheInflationOfAMember) {
  std::vector<double> values(300000);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<double>(i % 977);
  const std::string path = Zip(
      "cancel.npz", {{"X.npy", Npy("<f8", false, "(100000, 3)", RawBytes(values))}});
  int polls = 0;
  auto after_ten = [&polls] { return ++polls > 10; };
  auto arrays = ReadNpz(path, kMaxNpzTotalBytes, after_ten);
  EXPECT_EQ(arrays.status().code(), absl::StatusCode::kCancelled) << arrays.status();
  EXPECT_THAT(std::string(arrays.status().message()),
              HasSubstr("cancelled while member \"X.npy\" was inflated"));
  EXPECT_EQ(polls, 11);
  polls = 0;
  auto parsed = ParseNpz(test_support::ReadFile(path), "upload.npz", kMaxNpzTotalBytes, after_ten);
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kCancelled);
  LoadOptions o;
  polls = 0;
  o.cancelled = after_ten;
  auto loaded = LoadDataset(path, o);
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kCancelled) << loaded.status();
  int never = 0;
  auto whole = ReadNpz(path, kMaxNpzTotalBytes, [&never] { return ++never < 0; });
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_GT(never, 10) << "polled once per piece";
}

TEST_F(NpzTest, DirectoryEntriesIgnored) {
  const std::string path = dir_.File("dir.npz");
  int error = 0;
  zip_t* zip = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &error);
  ASSERT_NE(zip, nullptr);
  ASSERT_GE(zip_dir_add(zip, "sub", 0), 0);
  const std::string x = XNpy();
  zip_source_t* src = zip_source_buffer(zip, x.data(), x.size(), 0);
  ASSERT_GE(zip_file_add(zip, "X.npy", src, 0), 0);
  ASSERT_EQ(zip_close(zip), 0);
  auto arrays = ReadNpz(path);
  ASSERT_TRUE(arrays.ok()) << arrays.status();
  EXPECT_EQ(arrays->size(), 1u);
}

TEST_F(NpzTest, CorruptDeflateMember) {
  std::string bytes = test_support::ReadFile(
      Zip("c.npz", {{"X.npy", XNpy(), true}, {"y.npy", YNpy(), true}}));
  const size_t data = test_support::MemberDataOffset(bytes, 0);
  for (size_t i = 2; i < 12; ++i) bytes[data + i] ^= 0x5a;
  auto arrays = ParseNpz(bytes, "c.npz");
  ExpectError(arrays, {"c.npz: member \"X.npy\"", "corrupt data"});
}

TEST_F(NpzTest, CorruptStoredMemberFailsCrc) {
  std::string bytes =
      test_support::ReadFile(Zip("s.npz", {{"X.npy", XNpy(), false}}));
  const size_t data = test_support::MemberDataOffset(bytes, 0);
  bytes[data + 130] ^= 0x01;  // Inside the array data, past the header.
  ExpectError(ParseNpz(bytes, "s.npz"), {"s.npz: member \"X.npy\"", "CRC"});
}

TEST_F(NpzTest, DeclaredSizesOverLimitRefusedBeforeReading) {
  std::string bytes = test_support::ReadFile(
      Zip("bomb.npz", {{"X.npy", XNpy(), true}, {"y.npy", YNpy(), true}}));
  test_support::PatchUncompressedSize(&bytes, 0, 0xF0000000u);
  test_support::PatchUncompressedSize(&bytes, 1, 0xF0000000u);
  auto arrays = ParseNpz(bytes, "bomb.npz");
  EXPECT_EQ(arrays.status().code(), absl::StatusCode::kResourceExhausted);
  for (const char* part : {"bomb.npz: member \"y.npy\"", "declares 4026531840",
                           "limit of 4294967296"}) {
    EXPECT_THAT(std::string(arrays.status().message()), HasSubstr(part));
  }
}

TEST_F(NpzTest, CustomLimit) {
  const std::string path = Zip("lim.npz", {{"X.npy", XNpy(), true}});
  auto over = ReadNpz(path, 100);
  EXPECT_EQ(over.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(over.status().message()), HasSubstr("member \"X.npy\""));
  EXPECT_THAT(std::string(over.status().message()), HasSubstr("limit of 100 decompressed bytes"));
  EXPECT_TRUE(ReadNpz(path, 1000).ok());
}

TEST_F(NpzTest, DeclaredSizeLargerThanContent) {
  std::string bytes =
      test_support::ReadFile(Zip("big.npz", {{"X.npy", XNpy(), true}}));
  test_support::PatchUncompressedSize(&bytes, 0, 100000);
  ExpectError(ParseNpz(bytes, "big.npz"), {"big.npz: member \"X.npy\""});
}

TEST_F(NpzTest, DeclaredSizeSmallerThanContent) {
  for (bool deflate : {true, false}) {
    std::string bytes =
        test_support::ReadFile(Zip("small.npz", {{"X.npy", XNpy(), deflate}}));
    test_support::PatchUncompressedSize(&bytes, 0, 50);
    ExpectError(ParseNpz(bytes, "small.npz"), {"small.npz: member \"X.npy\""});
  }
}

TEST_F(NpzTest, NotAZip) {
  ExpectError(ParseNpz("this is not a zip archive at all", "n.npz"),
              {"n.npz: cannot open as a zip archive"});
  ExpectError(ParseNpz("", "n.npz"), {"n.npz: is empty"});
  const std::string path = dir_.File("n.npz");
  ASSERT_TRUE(test_support::WriteFile(path, "garbage garbage garbage"));
  ExpectError(ReadNpz(path), {path, "cannot open as a zip archive"});
}

TEST_F(NpzTest, TruncatedZip) {
  const std::string bytes =
      test_support::ReadFile(Zip("t.npz", {{"X.npy", XNpy(), true}}));
  ExpectError(ParseNpz(bytes.substr(0, bytes.size() / 2), "t.npz"), {"t.npz"});
  ExpectError(ParseNpz(bytes.substr(0, bytes.size() - 5), "t.npz"), {"t.npz"});
}

TEST_F(NpzTest, EmptyArchive) {
  const std::string eocd = std::string("PK\5\6", 4) + std::string(18, '\0');
  ExpectError(ParseNpz(eocd, "e.npz"),
              {"e.npz: the archive holds no .npy arrays"});
}

TEST_F(NpzTest, NonNpyMemberRefused) {
  const std::string path =
      Zip("o.npz", {{"X.npy", XNpy(), true}, {"notes.txt", "hello", true}});
  ExpectError(ReadNpz(path),
              {path, "member \"notes.txt\"", "not a .npy array"});
}

TEST_F(NpzTest, BadMemberNamesFileAndMember) {
  const std::string path =
      Zip("bad.npz", {{"X.npy", XNpy(), true},
                      {"y.npy", Npy("|O", false, "(3,)", "abc"), true}});
  ExpectError(ReadNpz(path), {path + ": member \"y.npy\": ",
                              "pickled object arrays are not supported"});
}

TEST_F(NpzTest, MissingFile) {
  auto arrays = ReadNpz(dir_.File("missing.npz"));
  ASSERT_FALSE(arrays.ok());
  EXPECT_EQ(arrays.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(arrays.status().message()), HasSubstr("missing.npz"));
}

TEST_F(NpzTest, MutatedArchivesNeverCrash) {
  const std::string valid = test_support::ReadFile(
      Zip("f.npz", {{"X.npy", XNpy(), true}, {"y.npy", YNpy(), false}}));
  std::mt19937_64 rng(5);
  int ok = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string bytes = valid;
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits; ++e) {
      bytes[rng() % bytes.size()] = static_cast<char>(rng() & 0xff);
    }
    auto arrays = ParseNpz(bytes, "fuzz.npz");
    if (arrays.ok()) ++ok;
  }
  EXPECT_GT(ok, 0);  // Edits in unused fields (e.g. timestamps) are harmless.
}

}  // namespace
}  // namespace anorand
