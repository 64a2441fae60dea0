# Thin wrapper over CMake. The two commands of the README:
#   make demo   set up, build, run the main job on the default data and model
#   make test   set up, build with warnings as errors, run every test (+ ASan/UBSan unit tests)
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all setup build demo test test-unit test-asan bench format fuzz clean

all: build

setup:
	@scripts/setup.sh

build: setup
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

# Only the binary the demo runs: on a new machine the tests and benchmarks (`make build`,
# `make test`) would otherwise compile before the first result.
demo: setup
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS) --target qsearch
	scripts/demo.sh $(BUILD)/bin/qsearch

test: setup
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DQSEARCH_WERROR=ON $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)
	$(MAKE) --no-print-directory test-asan

# Unit tests (not the end-to-end ones) under AddressSanitizer + UndefinedBehaviorSanitizer.
test-asan:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQSEARCH_WERROR=ON \
	  -DQSEARCH_SANITIZE=ON -DQSEARCH_BUILD_BENCH=OFF $(CMAKE_FLAGS) >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS) --target unit_tests
	ctest --test-dir $(ASAN_BUILD) --output-on-failure -j $(JOBS) -L unit

bench: build
	scripts/setup.sh --bench
	bench/run_all.sh $(BUILD)

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')

# Builds the libFuzzer targets (tests/fuzz/*_fuzzer.cc) into $(FUZZ_BUILD)/bin; docs/fuzzing.md
# says how to run them.
FUZZ_BUILD ?= build-fuzz
fuzz:
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
	  -DQSEARCH_BUILD_FUZZERS=ON -DQSEARCH_SANITIZE=ON -DQSEARCH_BUILD_TESTS=OFF \
	  -DQSEARCH_BUILD_BENCH=OFF >/dev/null
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzzers

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
