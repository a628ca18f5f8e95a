#!/usr/bin/env bash
# Re-makes the seed corpus fuzz/corpus/<target>/ with the generator
# fuzz/make_corpus.cc, built in build-fuzz/ as scripts/fuzz builds it (run
# scripts/fuzz once first, or have clang-14 installed). Replaces every seed:
# the model seeds are retrained, so their bytes may differ on another
# machine; review `git status fuzz/corpus` before committing.
set -euo pipefail
cd "$(dirname "$0")/.."
CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DANORAND_SANITIZE=ON -DANORAND_FUZZ=ON -DANORAND_BUILD_TESTS=OFF >/dev/null
cmake --build build-fuzz --target anorand_make_corpus -j2
rm -rf fuzz/corpus
build-fuzz/fuzz/anorand_make_corpus fuzz/corpus
