// File: listener_knocker.h
//
// CivetWeb's listener (under prometheus-cpp's Exposer) polls in 2 s quanta,
// so stopping the Exposer takes up to 2 s unless a connection wakes it.
// A ListenerKnocker, alive while the Exposer stops, connects to its port
// every 20 ms from a thread of its own, so the stop does not wait out a
// quantum.
#ifndef ANORAND_SERVER_LISTENER_KNOCKER_H_
#define ANORAND_SERVER_LISTENER_KNOCKER_H_

#include <atomic>
#include <string>
#include <thread>

namespace anorand {

class ListenerKnocker {
 public:
  // `address` as the listener was given it (HOST:PORT; a wildcard host
  // knocks on loopback); `port` the bound one. Knocks on nothing when the
  // port is not positive or the host does not resolve.
  ListenerKnocker(const std::string& address, int port);
  ~ListenerKnocker();  // stops knocking
  ListenerKnocker(const ListenerKnocker&) = delete;
  ListenerKnocker& operator=(const ListenerKnocker&) = delete;

 private:
  std::atomic<bool> done_{false};
  std::thread thread_;
};

}  // namespace anorand

#endif  // ANORAND_SERVER_LISTENER_KNOCKER_H_
