// File: fuzz_check.h
//
// FUZZ_CHECK(cond): the fuzz targets' assertion. Unlike assert() it stays on
// in release builds; a failed check prints the condition and its location
// and aborts, which libFuzzer reports as a crash with the input saved.
#ifndef ANORAND_FUZZ_FUZZ_CHECK_H_
#define ANORAND_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                   \
  do {                                                                     \
    if (!(cond)) {                                                         \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__,     \
                   __LINE__, #cond);                                       \
      std::abort();                                                        \
    }                                                                      \
  } while (0)

#endif  // ANORAND_FUZZ_FUZZ_CHECK_H_
