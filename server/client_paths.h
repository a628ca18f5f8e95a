// File: client_paths.h
//
// What clients are told about the server's folders. Messages that reach a
// client (gRPC statuses, a job's error) name files relative to the folder
// the client knows them by: a model file as `fraud/3/model.anorand`
// (relative to --model_dir), a training file as its `data_path` (relative
// to --data_dir). The server's absolute layout stays in its own logs.
//
// ToGrpcStatus (status_util.h) and the job record's error pass their text
// through ClientText. A server registers its folders for its lifetime
// with a ClientFolders object; several servers in one process (tests) each
// register theirs. Thread-safe.
#ifndef ANORAND_SERVER_CLIENT_PATHS_H_
#define ANORAND_SERVER_CLIENT_PATHS_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace anorand {

// `text` with every registered folder rewritten: "<folder>/rest" becomes
// "rest", and the folder alone becomes its description (for example
// "the model store (--model_dir)").
std::string ClientText(absl::string_view text);

// Registers folders (each as given and, when it exists, its canonical
// path) until destroyed.
class ClientFolders {
 public:
  // Pairs of folder and description; empty folders are skipped.
  explicit ClientFolders(std::vector<std::pair<std::string, std::string>> folders);
  ~ClientFolders();
  ClientFolders(const ClientFolders&) = delete;
  ClientFolders& operator=(const ClientFolders&) = delete;

 private:
  std::vector<std::pair<std::string, std::string>> registered_;
};

}  // namespace anorand

#endif  // ANORAND_SERVER_CLIENT_PATHS_H_
