# Set-up entry points. `make demo` and `make test` install what they need (Debian packages),
# build, and run. See README.md.
BUILD_DIR ?= build
RELEASE_DIR ?= build-release
BENCH_DIR ?= build-bench
SANITIZE_DIR ?= build-sanitize
FUZZ_SECONDS ?= 30
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
DEMO_DB ?= results/demo.db
CMAKE_FLAGS ?=

.PHONY: deps test-deps sanitize-deps build release test demo bench lint clean sanitize-build \
	test-sanitize fuzz

deps:
	./scripts/install-deps.sh

test-deps:
	./scripts/install-deps.sh test

build: deps
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)
	cmake --build $(BUILD_DIR) -j $(JOBS)

release: deps
	cmake -S . -B $(RELEASE_DIR) -DCMAKE_BUILD_TYPE=Release -DPLUMB_BUILD_TESTS=OFF -DPLUMB_BUILD_BENCH=OFF $(CMAKE_FLAGS)
	cmake --build $(RELEASE_DIR) -j $(JOBS)

test: test-deps build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

sanitize-deps:
	./scripts/install-deps.sh sanitize

# One clang build with AddressSanitizer + UndefinedBehaviorSanitizer serves both the sanitized
# test run and the fuzzers.
sanitize-build: sanitize-deps
	CXX=clang++ cmake -S . -B $(SANITIZE_DIR) -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" \
	  -DPLUMB_FUZZ=ON $(CMAKE_FLAGS)
	cmake --build $(SANITIZE_DIR) -j $(JOBS)

# The whole unit and e2e suite under ASan + UBSan.
test-sanitize: sanitize-build
	cd $(SANITIZE_DIR) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j $(JOBS)

# Each libFuzzer target for FUZZ_SECONDS, from its seed corpus (copied: new inputs stay out of
# the tree). A crash stops with the input that caused it.
fuzz: sanitize-build
	./scripts/fuzz.sh $(SANITIZE_DIR)/fuzz $(FUZZ_SECONDS)

demo: release
	./scripts/demo.sh $(RELEASE_DIR)/plumb $(DEMO_DB)

# (test-deps: the PostgreSQL server that the workers and leaderboard benchmarks start.)
bench: test-deps
	cmake -S . -B $(BENCH_DIR) -DCMAKE_BUILD_TYPE=Release -DPLUMB_BUILD_TESTS=OFF -DPLUMB_BUILD_BENCH=ON $(CMAKE_FLAGS)
	cmake --build $(BENCH_DIR) -j $(JOBS)
	$(BENCH_DIR)/bench/plumb_bench --plumb $(BENCH_DIR)/plumb
	$(BENCH_DIR)/bench/gate_sim
	$(BENCH_DIR)/bench/leaderboard_bench --plumb $(BENCH_DIR)/plumb
	$(BENCH_DIR)/bench/leaderboard_bench --plumb $(BENCH_DIR)/plumb --engine postgres
	$(BENCH_DIR)/bench/workers_bench --plumb $(BENCH_DIR)/plumb
	$(BENCH_DIR)/bench/long_reply_bench

# clang-tidy naming and bug checks over src/ (needs a configured build for compile_commands.json).
lint: build
	cmake -S . -B $(BUILD_DIR) -DCMAKE_EXPORT_COMPILE_COMMANDS=ON > /dev/null
	clang-tidy -p $(BUILD_DIR) --quiet $$(git ls-files 'src/*.cc') 2>/dev/null | grep -E 'warning|error' ; true

clean:
	rm -rf $(BUILD_DIR) $(RELEASE_DIR) $(BENCH_DIR) $(SANITIZE_DIR)
