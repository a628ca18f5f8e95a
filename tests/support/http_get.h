// File: http_get.h
//
// A minimal HTTP/1.0 GET to 127.0.0.1 for tests (the metrics endpoint, the
// Prometheus query API): the whole raw response (status line, headers,
// body), or "" when the connection fails. 10 s receive timeout.
#ifndef ANORAND_TESTS_SUPPORT_HTTP_GET_H_
#define ANORAND_TESTS_SUPPORT_HTTP_GET_H_

#include <string>

namespace anorand::test_support {

// `headers`: extra header lines, each ending in "\r\n".
std::string HttpGetRaw(int port, const std::string& path, const std::string& headers = "");

}  // namespace anorand::test_support

#endif  // ANORAND_TESTS_SUPPORT_HTTP_GET_H_
