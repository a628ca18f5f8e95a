// Every anorand-server flag is checked at start: a value out of range, an
// address gRPC would reinterpret (no port: 443; a port over 65535: wrapped)
// or a combination that can never work stops the real binary with exit
// code 2 and a message naming the flag, before it listens.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/subprocess.h"
#include "tests/support/test_util.h"

namespace anorand::test_support {
namespace {

using ::testing::HasSubstr;

// Polls `out_path` until it holds `text` or the process exits (its code in
// *exit_code), for up to 60 s.
void WaitForOutputOrExit(const std::string& out_path, const std::string& text,
                         Subprocess* proc, int* exit_code) {
  for (int i = 0; i < 600; ++i) {
    if (ReadWholeFile(out_path).find(text) != std::string::npos) return;
    *exit_code = proc->Wait(0.1);
    if (*exit_code != -1) return;
  }
}

struct BadFlag {
  std::vector<std::string> flags;
  std::string message;  // a part of stderr
};

TEST(ServerFlagsTest, EveryBadValueExitsTwoNamingTheFlag) {
  TempDir dir;
  const std::vector<BadFlag> cases = {
      {{"--grpc_address=127.0.0.1:99999"},
       "--grpc_address=127.0.0.1:99999 is invalid: the port '99999' is not a number in 0..65535"},
      {{"--grpc_address=127.0.0.1"}, "--grpc_address=127.0.0.1 is invalid: it has no port"},
      {{"--grpc_address=127.0.0.1:"}, "--grpc_address=127.0.0.1: is invalid: it has no port"},
      {{"--grpc_address=:50051"}, "--grpc_address=:50051 is invalid: it has no host"},
      {{"--grpc_address=::1:50051"}, "an IPv6 host must be in brackets"},
      {{"--grpc_address=127.0.0.1:5x"}, "the port '5x' is not a number"},
      {{"--grpc_address="}, "--grpc_address is empty"},
      {{"--metrics_address=127.0.0.1:65536"}, "--metrics_address=127.0.0.1:65536 is invalid"},
      {{"--metrics_address=localhost"}, "--metrics_address=localhost is invalid: it has no port"},
      {{"--model_dir="}, "--model_dir is empty"},
      {{"--poll_seconds=-1"}, "--poll_seconds must be in [0, 86400]"},
      {{"--poll_seconds=nan"}, "--poll_seconds must be in [0, 86400]"},
      {{"--max_batch_records=0"}, "--max_batch_records must be in [1, 16777216]"},
      {{"--max_message_bytes=100"}, "--max_message_bytes must be in [1024, 2147483647]"},
      {{"--max_streams=0"}, "--max_streams must be in [1, 1000000]"},
      {{"--max_upload_bytes=10"}, "--max_upload_bytes must be at least 1024"},
      {{"--drain_seconds=-1"}, "--drain_seconds must be in [0, 3600]"},
      {{"--stream_idle_seconds=-1"}, "--stream_idle_seconds must be in [0, 604800]"},
      {{"--max_loaded_model_bytes=-1"}, "--max_loaded_model_bytes must be >= 0"},
      {{"--batch_max_records=0"}, "--batch_max_records must be in [1, 16777216]"},
      {{"--batch_max_delay_us=-1"}, "--batch_max_delay_us must be in [0, 1000000]"},
      {{"--batch_max_queued_records=0"}, "--batch_max_queued_records must be in [1, 4294967296]"},
      {{"--batch_max_parallel=-1"}, "--batch_max_parallel must be in [0, 1024]"},
      {{"--require_models=../etc"}, "--require_models: model name '../etc' is invalid"},
      {{"--data_dir=" + dir.File("no-such-folder")}, "--data_dir=" + dir.File("no-such-folder") +
                                                        " is not a folder"},
      {{"--max_queued_jobs=-1"}, "--max_queued_jobs must be in [0, 100000]"},
      {{"--max_queued_jobs=100001"}, "--max_queued_jobs must be in [0, 100000]"},
      {{"--training_threads=0"}, "--training_threads must be in [1, 64]"},
      {{"--intake_threads=0"}, "--intake_threads must be in [1, 64]"},
      {{"--shadow_queue_records=0"}, "--shadow_queue_records must be in [1, 1073741824]"},
      {{"--shadow_window_records=1"}, "--shadow_window_records must be in [2, 10000000]"},
      {{"--shadow_window_records=many"}, "shadow_window_records"},
      {{"--drift_window_records=1"},
       "--drift_window_records must be 0 (drift is not tracked) or in [2, 10000000]"},
      {{"--drift_window_records=-5"}, "--drift_window_records must be 0"},
      {{"--drift_sample=0"}, "--drift_sample must be in (0, 1]"},
      {{"--drift_sample=1.5"}, "--drift_sample must be in (0, 1]"},
      {{"--drift_sample=nan"}, "--drift_sample must be in (0, 1]"},
      {{"--drift_feature_series=-1"}, "--drift_feature_series must be in [0, 10000]"},
      {{"--reservoir_records=fraud"}, "--reservoir_records: 'fraud' is not NAME=ROWS"},
      {{"--reservoir_records=fraud=1"}, "the rows of 'fraud' must be an integer in [2, 100000000]"},
      {{"--reservoir_records=fraud=x"}, "the rows of 'fraud' must be an integer"},
      {{"--reservoir_records=a=10,a=20"}, "'a' is given twice"},
      {{"--reservoir_records=Bad/name=10"}, "--reservoir_records: "},
      {{"--reservoir_max_bytes=10"}, "--reservoir_max_bytes must be in [1024, 68719476736]"},
      {{"--reservoir_period_seconds=0"}, "--reservoir_period_seconds must be in [1, 31622400]"},
      {{"--reservoir_flush_seconds=0"}, "--reservoir_flush_seconds must be in [1, 86400]"},
      {{"--retrain_check_seconds=0"}, "--retrain_check_seconds must be in (0, 86400]"},
      {{"--max_feedback_records=0"}, "--max_feedback_records must be in [1, 10000000]"},
      {{"--retrain_check_seconds=nan"}, "--retrain_check_seconds must be in (0, 86400]"},
      {{"--replica_id=../x"}, "--replica_id '../x' must be 1-64 of [A-Za-z0-9._-]"},
      {{"--replica_id=.hidden"}, "not starting with '.'"},
      {{"--training_omp_threads=0"}, "--training_omp_threads must be in [1, 1024]"},
      {{"--training_yield_inflight=-1"}, "--training_yield_inflight must be in [0, 1000000]"},
      {{"--training_yield_max_pause_ms=0"}, "--training_yield_max_pause_ms must be in [1, 60000]"},
      {{"--require_token_for_scoring"}, "--require_token_for_scoring needs a token"},
      {{"--admin_token_file=" + dir.File("no-token")}, "--admin_token_file"},
      {{"--tls_cert=" + dir.File("cert.pem")}, "TLS needs both --tls_cert and --tls_key"},
      {{"--tls_reload_seconds=0"}, "--tls_reload_seconds must be in [1, 86400]"},
  };
  for (const BadFlag& c : cases) {
    std::vector<std::string> argv = {ServerBinary(), "--grpc_address=127.0.0.1:0",
                                     "--model_dir=" + dir.File("models"), "--metrics_address="};
    argv.insert(argv.end(), c.flags.begin(), c.flags.end());
    std::string out, err;
    // A server that wrongly accepts the flag runs until the timeout (-1).
    EXPECT_EQ(RunCommand(argv, &out, &err, 60), 2) << c.flags[0] << "\n" << out << err;
    EXPECT_THAT(err, HasSubstr(c.message)) << c.flags[0];
    EXPECT_THAT(out, ::testing::Not(HasSubstr("listening"))) << c.flags[0];
  }
}

TEST(ServerFlagsTest, BracketedIpv6AndUnixSocketAddressesPassTheCheck) {
  TempDir dir;
  for (const std::string& address : std::vector<std::string>{"[::1]:0", "unix:" + dir.File("sock")}) {
    Subprocess server({ServerBinary(), "--grpc_address=" + address,
                       "--model_dir=" + dir.File("models"), "--metrics_address="},
                      dir.File("out"), dir.File("err"));
    // It listens, or (a machine without IPv6) fails at the bind: never at
    // the flag check.
    int exit_code = -1;
    WaitForOutputOrExit(dir.File("out"), "listening", &server, &exit_code);
    EXPECT_THAT(ReadWholeFile(dir.File("err")), ::testing::Not(HasSubstr("is invalid")))
        << address;
  }
}

}  // namespace
}  // namespace anorand::test_support
