// File: make_corpus.cc
//
// Writes the seed corpus of the fuzz targets: valid inputs of every kind
// each reader accepts, and near-valid ones that fail one check (a flipped
// checksum byte, a truncated array, a ragged CSV row, a request for a model
// version that is loading, ...). Run through fuzz/make_corpus.sh:
//   anorand_make_corpus OUT_DIR    (writes OUT_DIR/<target>/<seed>)
// The tiny models are trained here (fuzz/tiny_model.h), so the model seeds
// are real files of the current format.
#include <zip.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "anorand/v1/scoring.pb.h"
#include "fuzz/tiny_model.h"
#include "model/model_file.h"

namespace {

std::string out_dir;
int written = 0;

void Write(const std::string& target, const std::string& name, const std::string& bytes) {
  const std::string dir = out_dir + "/" + target;
  std::filesystem::create_directories(dir);
  std::ofstream out(dir + "/" + name, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "cannot write %s/%s\n", dir.c_str(), name.c_str());
    std::exit(1);
  }
  ++written;
}

// ---- NPY: the layout numpy.save writes (header padded to 64 bytes).

template <typename T>
std::string Raw(const std::vector<T>& values, bool big_endian = false) {
  std::string out(values.size() * sizeof(T), '\0');
  if (!values.empty()) std::memcpy(out.data(), values.data(), out.size());
  if (big_endian) {
    for (size_t at = 0; at < out.size(); at += sizeof(T)) {
      std::reverse(out.begin() + at, out.begin() + at + sizeof(T));
    }
  }
  return out;
}

std::string Npy(const std::string& descr, bool fortran, const std::string& shape,
                const std::string& data, int major = 1) {
  std::string header = "{'descr': '" + descr + "', 'fortran_order': " +
                       (fortran ? "True" : "False") + ", 'shape': " + shape + ", }";
  const size_t prelude = major == 1 ? 10 : 12;
  while ((prelude + header.size() + 1) % 64 != 0) header.push_back(' ');
  header.push_back('\n');
  std::string out("\x93NUMPY", 6);
  out.push_back(static_cast<char>(major));
  out.push_back(0);
  for (size_t i = 0; i < prelude - 8; ++i) {
    out.push_back(static_cast<char>((header.size() >> (8 * i)) & 0xff));
  }
  return out + header + data;
}

void NpySeeds() {
  const std::vector<double> x = {0.5, -1.25, 3.0, 4.5, 1e-3, -7.0};
  Write("npy", "f8_2x3_c.npy", Npy("<f8", false, "(2, 3)", Raw(x)));
  Write("npy", "f4_2x3_fortran.npy",
        Npy("<f4", true, "(2, 3)", Raw(std::vector<float>{0.5f, 4.5f, -1.25f, 1e-3f, 3, -7})));
  Write("npy", "i4_big_endian_1d.npy",
        Npy(">i4", false, "(4,)", Raw(std::vector<int32_t>{1, -2, 300000, -4}, true)));
  Write("npy", "u1_3x1.npy", Npy("|u1", false, "(3, 1)", Raw(std::vector<uint8_t>{0, 7, 255})));
  Write("npy", "b1_1d.npy", Npy("|b1", false, "(3,)", Raw(std::vector<uint8_t>{1, 0, 1})));
  Write("npy", "i8_0d.npy", Npy("<i8", false, "()", Raw(std::vector<int64_t>{42})));
  Write("npy", "u2_big_2x2.npy",
        Npy(">u2", false, "(2, 2)", Raw(std::vector<uint16_t>{1, 2, 65535, 4}, true)));
  Write("npy", "i2_v2_header.npy",
        Npy("<i2", false, "(2, 2)", Raw(std::vector<int16_t>{-1, 2, -3, 4}), 2));
  Write("npy", "f8_v3_header.npy", Npy("<f8", false, "(1, 2)", Raw(std::vector<double>{1, 2}), 3));
  Write("npy", "f8_0x3_empty.npy", Npy("<f8", false, "(0, 3)", ""));
  // Near-valid.
  Write("npy", "bad_truncated_data.npy", Npy("<f8", false, "(2, 3)", Raw(x).substr(0, 40)));
  Write("npy", "bad_nan.npy",
        Npy("<f8", false, "(2,)", Raw(std::vector<double>{1.0, std::nan("")})));
  Write("npy", "bad_3d.npy", Npy("<f8", false, "(1, 1, 2)", Raw(std::vector<double>{1, 2})));
  Write("npy", "bad_object.npy", Npy("|O", false, "(1,)", std::string(8, '\0')));
  Write("npy", "bad_f8_over_float.npy", Npy("<f8", false, "(1,)", Raw(std::vector<double>{1e300})));
}

// ---- NPZ: a zip of .npy members, stored or deflated.

struct Member {
  std::string name;
  std::string bytes;
  bool deflate;
};

std::string Zip(const std::vector<Member>& members) {
  const std::string tmp = out_dir + "/.make_corpus.zip";
  int error = 0;
  zip_t* zip = zip_open(tmp.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &error);
  if (zip == nullptr) std::exit(1);
  for (const Member& m : members) {
    zip_source_t* src = zip_source_buffer(zip, m.bytes.data(), m.bytes.size(), 0);
    const zip_int64_t index = zip_file_add(zip, m.name.c_str(), src, ZIP_FL_ENC_UTF_8);
    if (index < 0) std::exit(1);
    zip_set_file_compression(zip, index, m.deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0);
    zip_file_set_mtime(zip, index, 315532800, 0);  // 1980-01-01: reproducible bytes
  }
  if (zip_close(zip) != 0) std::exit(1);
  std::ifstream in(tmp, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::filesystem::remove(tmp);
  return bytes;
}

void NpzSeeds() {
  const std::string x = Npy("<f8", false, "(3, 2)", Raw(std::vector<double>{1, 2, 3, 4, 5, 6}));
  const std::string y = Npy("<i8", false, "(3,)", Raw(std::vector<int64_t>{0, 1, 0}));
  Write("npz", "x_y_stored.npz", Zip({{"X.npy", x, false}, {"y.npy", y, false}}));
  Write("npz", "x_y_deflated.npz", Zip({{"X.npy", x, true}, {"y.npy", y, true}}));
  Write("npz", "x_only_f4.npz",
        Zip({{"X.npy", Npy("<f4", true, "(2, 2)", Raw(std::vector<float>{1, 2, 3, 4})), true}}));
  Write("npz", "x_y_column_labels.npz",
        Zip({{"X.npy", x, true},
             {"y.npy", Npy("|b1", false, "(3, 1)", Raw(std::vector<uint8_t>{1, 0, 0})), false}}));
  // Near-valid.
  Write("npz", "bad_label_2.npz",
        Zip({{"X.npy", x, false},
             {"y.npy", Npy("<i8", false, "(3,)", Raw(std::vector<int64_t>{0, 2, 0})), false}}));
  Write("npz", "bad_rows_mismatch.npz",
        Zip({{"X.npy", x, true},
             {"y.npy", Npy("<i8", false, "(2,)", Raw(std::vector<int64_t>{0, 1})), true}}));
  Write("npz", "bad_not_npy_member.npz", Zip({{"X.npy", x, false}, {"notes.txt", "hi", false}}));
  Write("npz", "single_array_not_named_x.npz", Zip({{"features.npy", x, true}}));
}

// ---- CSV.

void CsvSeeds() {
  Write("csv", "header_label.csv", "a,b,label\n1.5,2,0\n-3,4e2,1\n0.25,1e-3,0\n");
  Write("csv", "no_header.csv", "1,2,3\n4,5,6\n");
  Write("csv", "quoted.csv", "\"a\",\"b, with comma\",\"say \"\"hi\"\"\"\n\"1\", 2 ,\"3\"\n");
  Write("csv", "blank_lines_at_end.csv", "x,y\n1,2\n3,4\n\n  \n");
  Write("csv", "tabs.tsv", "a\tb\tlabel\n1\t2\ttrue\n3\t4\tFALSE\n");
  Write("csv", "bom_crlf.csv", "\xEF\xBB\xBFp,q\r\n1,2\r\n3,4\r\n");
  Write("csv", "labels_first_column.csv", "0,1.5,2.5\n1,3.5,4.5\n");
  Write("csv", "numbers.csv", "+1,-0,1e38\n.5,5.,-1E-45\n");
  // Near-valid.
  Write("csv", "bad_blank_line_inside.csv", "a,b\n1,2\n\n3,4\n");
  Write("csv", "bad_ragged.csv", "a,b,c\n1,2,3\n4,5\n");
  Write("csv", "bad_nan.csv", "a,b\n1,nan\n");
  Write("csv", "bad_float_overflow.csv", "a\n1e39\n");
  Write("csv", "bad_unterminated_quote.csv", "a,b\n\"1,2\n");
  Write("csv", "bad_header_only.csv", "a,b,label\n");
}

// ---- Model files.

void ModelSeeds() {
  auto paper = anorand::fuzz::TinyModel(3, /*calibrated=*/false);
  // The model score_request_fuzzer registers as "tiny".
  auto calibrated = anorand::fuzz::TinyModel(4, /*calibrated=*/true);
  if (!paper.ok() || !calibrated.ok()) {
    std::fprintf(stderr, "training failed\n");
    std::exit(1);
  }
  paper->set_name("tiny");
  for (const char* n : {"f0", "f1", "f2"}) paper->add_feature_names(n);
  const std::string valid = anorand::SerializeModel(*paper);
  Write("model_file", "paper_3_features.anorand", valid);
  Write("model_file", "calibrated_4_features.anorand", anorand::SerializeModel(*calibrated));
  // Near-valid.
  std::string flipped = valid;
  flipped[flipped.size() / 2] ^= 0x01;
  Write("model_file", "bad_checksum.anorand", flipped);
  Write("model_file", "bad_truncated.anorand", valid.substr(0, valid.size() - 9));
  anorand::v1::ModelFile wrong = *paper;
  wrong.mutable_network()->set_input_features(4);
  Write("model_file", "bad_input_features.anorand", anorand::SerializeModel(wrong));
  wrong = *paper;
  wrong.mutable_normalizer()->set_scale(1, -1.0f);
  Write("model_file", "bad_negative_scale.anorand", anorand::SerializeModel(wrong));
}

// ---- ScoreRequests for the registry of score_request_fuzzer.cc: model
// "tiny" (4 features; version 1 ready, 2 loading, 3 failed, 4 unloaded;
// aliases "production" -> 1 and "stale" -> 9) and "busy" (loading).

anorand::v1::ScoreRequest Request(const std::string& model, int rows, int features) {
  anorand::v1::ScoreRequest r;
  r.mutable_model()->set_name(model);
  r.mutable_batch()->set_num_features(features);
  for (int i = 0; i < rows * features; ++i) r.mutable_batch()->add_values(0.25f * (i % 7) - 0.5f);
  return r;
}

void RequestSeeds() {
  auto put = [](const std::string& name, const anorand::v1::ScoreRequest& r) {
    Write("score_request", name, r.SerializeAsString());
  };
  put("latest_2_rows.pb", Request("tiny", 2, 4));
  auto r = Request("tiny", 3, 4);
  r.mutable_model()->set_alias("production");
  r.set_explain(true);
  r.set_request_id("req-1");
  for (const char* id : {"a", "b", "c"}) r.mutable_batch()->add_ids(id);
  put("alias_explain_ids.pb", r);
  r = Request("tiny", 1, 4);
  r.mutable_model()->set_version(1);
  put("version_1.pb", r);
  r.mutable_model()->set_alias("latest");
  put("alias_latest.pb", r);
  // Near-valid.
  for (int v : {2, 3, 4, 9}) {
    r = Request("tiny", 1, 4);
    r.mutable_model()->set_version(v);
    put("bad_version_" + std::to_string(v) + ".pb", r);
  }
  r = Request("tiny", 1, 4);
  r.mutable_model()->set_alias("stale");
  put("bad_alias_stale.pb", r);
  put("bad_model_loading.pb", Request("busy", 1, 4));
  put("bad_unknown_model.pb", Request("other", 1, 4));
  put("bad_model_name.pb", Request("../etc", 1, 4));
  put("bad_features.pb", Request("tiny", 2, 3));
  put("bad_empty_batch.pb", Request("tiny", 0, 4));
  put("bad_too_many_rows.pb", Request("tiny", 65, 4));
  r = Request("tiny", 2, 4);
  r.mutable_batch()->set_values(5, std::nanf(""));
  put("bad_nan_value.pb", r);
  r = Request("tiny", 2, 4);
  r.mutable_batch()->add_ids("only-one");
  put("bad_ids_count.pb", r);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: anorand_make_corpus OUT_DIR\n");
    return 2;
  }
  out_dir = argv[1];
  std::filesystem::create_directories(out_dir);
  NpySeeds();
  NpzSeeds();
  CsvSeeds();
  ModelSeeds();
  RequestSeeds();
  std::printf("wrote %d seeds under %s\n", written, out_dir.c_str());
  return 0;
}
