// The model file: bit-exact round trip, atomic save, and a corpus of
// corrupted and hostile files refused cleanly with a message.
#include <filesystem>
#include <fstream>
#include <functional>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/compiled_model.h"
#include "model/model_file.h"
#include "tests/support/test_util.h"

namespace anorand::test_support {
namespace {

using ::testing::HasSubstr;

class ModelFileTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { model_ = new v1::ModelFile(TinyModel(5, 1)); }
  static void TearDownTestSuite() { delete model_; }
  static v1::ModelFile* model_;
};
v1::ModelFile* ModelFileTest::model_ = nullptr;

// A container around an arbitrary payload, with a correct checksum, so the
// validator (not the checksum) must catch what is wrong.
std::string Rewrap(const v1::ModelFile& m) { return SerializeModel(m); }

TEST_F(ModelFileTest, SaveLoadRoundTripIsBitExact) {
  TempDir dir;
  const std::string path = dir.File("m.anorand");
  ASSERT_TRUE(SaveModelFile(*model_, path).ok());
  auto loaded = LoadModelFile(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  EXPECT_EQ(SerializeModel(*loaded), SerializeModel(*model_));
  // Saving over an existing file replaces it whole; no temp file is left.
  ASSERT_TRUE(SaveModelFile(*loaded, path).ok());
  int files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir.path())) files += e.is_regular_file();
  EXPECT_EQ(files, 1);
}

TEST_F(ModelFileTest, EveryTruncationIsRefused) {
  const std::string good = SerializeModel(*model_);
  for (size_t n = 0; n < good.size(); n += std::max<size_t>(1, good.size() / 97)) {
    auto r = ParseModel(good.substr(0, n), "cut");
    EXPECT_FALSE(r.ok()) << n;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(r.status().message()), HasSubstr("cut: "));
  }
}

TEST_F(ModelFileTest, EveryFlippedByteIsRefused) {
  const std::string good = SerializeModel(*model_);
  for (size_t i = 0; i < good.size(); i += std::max<size_t>(1, good.size() / 211)) {
    std::string bad = good;
    bad[i] ^= 0x5a;
    EXPECT_FALSE(ParseModel(bad, "flip").ok()) << i;
  }
}

TEST_F(ModelFileTest, HeaderProblemsAreNamed) {
  const std::string good = SerializeModel(*model_);
  std::string magic = good, version = good, length = good, padded = good + "xx";
  magic[0] = 'X';
  version[8] = 9;
  length[23] = 0x7f;  // a payload of petabytes
  struct {
    std::string bytes, message;
  } cases[] = {{magic, "wrong magic"},
               {version, "format version 9"},
               {length, "over the limit"},
               {padded, "truncated or padded"},
               {"", "shorter than the 28-byte header"}};
  for (const auto& c : cases) {
    auto r = ParseModel(c.bytes, "m");
    ASSERT_FALSE(r.ok());
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(c.message));
  }
}

TEST_F(ModelFileTest, ValidatorCatchesInconsistentModelsWithValidChecksums) {
  struct Case {
    const char* message;
    std::function<void(v1::ModelFile*)> mutate;
  } cases[] = {
      {"NaN or infinite",
       [](v1::ModelFile* m) {
         m->mutable_network()->mutable_encoder(0)->mutable_dense()->set_weight(3, NAN);
       }},
      {"takes 9 inputs",
       [](v1::ModelFile* m) {
         m->mutable_network()->mutable_encoder(1)->mutable_dense()->set_in_features(9);
       }},
      {"weights and",
       [](v1::ModelFile* m) {
         m->mutable_network()->mutable_noise_head()->mutable_weight()->RemoveLast();
       }},
      {"negative variance",
       [](v1::ModelFile* m) {
         m->mutable_network()->mutable_decoder(0)->mutable_batch_norm()->set_running_var(0, -1);
       }},
      {"normalizer scale must be positive",
       [](v1::ModelFile* m) { m->mutable_normalizer()->set_scale(0, 0); }},
      {"input_features is 0", [](v1::ModelFile* m) { m->mutable_network()->set_input_features(0); }},
      {"encoder has 0 layers", [](v1::ModelFile* m) { m->mutable_network()->clear_encoder(); }},
      {"alpha must be in [0, 1]", [](v1::ModelFile* m) { m->mutable_score_stats()->set_alpha(2); }},
      {"quantile tables",
       [](v1::ModelFile* m) {
         m->mutable_score_stats()->set_rule(v1::SCORE_RULE_CALIBRATED);
         m->mutable_score_stats()->clear_error_quantiles();
       }},
      {"feature names", [](v1::ModelFile* m) { m->add_feature_names("extra"); }},
      {"unknown score rule", [](v1::ModelFile* m) { m->mutable_score_stats()->set_rule(v1::ScoreRule(7)); }},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.message);
    v1::ModelFile m = *model_;
    c.mutate(&m);
    auto r = ParseModel(Rewrap(m), "m");
    ASSERT_FALSE(r.ok());
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(c.message));
    EXPECT_FALSE(CompiledModel::Create(m).ok());
  }
}

TEST_F(ModelFileTest, NonModelsAndMissingFilesAreRefused) {
  TempDir dir;
  auto missing = LoadModelFile(dir.File("nope"));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  auto folder = LoadModelFile(dir.path());
  EXPECT_THAT(std::string(folder.status().message()), HasSubstr("not a regular file"));
  std::ofstream(dir.File("junk")) << "PK\x03\x04 a zip, not a model";
  EXPECT_FALSE(LoadModelFile(dir.File("junk")).ok());
}

}  // namespace
}  // namespace anorand::test_support
