#include "server/listener_knocker.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

namespace anorand {

ListenerKnocker::ListenerKnocker(const std::string& address, int port) {
  std::string host = address.substr(0, address.rfind(':'));
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  if (host.empty() || host == "0.0.0.0" || host == "*") host = "127.0.0.1";
  if (host == "::") host = "::1";
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (port <= 0 || getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0) {
    return;
  }
  thread_ = std::thread([this, res] {
    while (!done_.load()) {
      const int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd >= 0) {
        connect(fd, res->ai_addr, res->ai_addrlen);
        ::close(fd);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    freeaddrinfo(res);
  });
}

ListenerKnocker::~ListenerKnocker() {
  done_ = true;
  if (thread_.joinable()) thread_.join();
}

}  // namespace anorand
