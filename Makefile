# Short driver around CMake. The commands a new user needs:
#   make run    build and start ternd on 127.0.0.1:1883, logging to the terminal
#   make test   build and run every test: unit, interop, sanitizers, format, fuzz smoke
#   make run-cluster   build and start a local cluster: 3 nats-server + 3 ternd
JOBS ?= $(shell nproc)
BUILD ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
FUZZ_BUILD ?= build-fuzz
# Seconds per fuzz target: `make test` runs every target of fuzz/ this long
# (7 s each, under 2 min in all); `make fuzz` runs each for 300 s.
FUZZ_SECONDS ?= 7
CMAKE_FLAGS ?=
PREFIX ?= /usr/local
DESTDIR ?=

.PHONY: all deps test-deps run run-cluster test test-cluster unit interop asan tsan format format-check fuzz fuzz-smoke \
	clean bench bench-cluster install deb

all: deps
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

deps:
	@scripts/deps.sh build

test-deps:
	@scripts/deps.sh test

# Installs ternd (sbin), tern (bin), libtern (libtern.so*, libtern.a),
# include/tern/*.h, lib/pkgconfig/tern.pc and the manual pages
# (share/man/man{1,5,8}) under PREFIX, staged under
# DESTDIR when set (a package build: make install DESTDIR=/tmp/stage).
install: all
	DESTDIR="$(DESTDIR)" cmake --install $(BUILD) --prefix $(PREFIX)

# The Debian package, $(BUILD)/tern_VERSION_ARCH.deb, made with dpkg-deb from
# an install with PREFIX /usr (dist/deb/build-deb.sh): everything make
# install installs, the user ternd and /var/lib/ternd made by its postinst,
# the service enabled where systemd runs. `apt install ./build/tern_*.deb`.
deb: all
	dist/deb/build-deb.sh $(BUILD) . $(BUILD)

# Side-by-side benchmarks against Debian's mosquitto (bench/README.md);
# results in bench/results/. Builds nothing itself beyond `all`.
bench: all
	@scripts/deps.sh bench
	bench/compare --build $(BUILD)

# Cross-node scenarios of a local cluster (1 nats-server + 3 ternd) beside one
# ternd and mosquitto (bench/README.md, "Cluster"); about 2.5 min a run.
bench-cluster: all
	@scripts/deps.sh bench
	@scripts/deps.sh cluster
	bench/cluster --build $(BUILD)

run: all
	./$(BUILD)/ternd -v -b 127.0.0.1 -p 1883 --db $(BUILD)/ternd.db

# 3 nats-server (one JetStream cluster) + 3 ternd on 127.0.0.1 (MQTT ports
# 1883-1885, NATS 4222-4224), state in $(BUILD)/run-cluster; Ctrl-C stops
# them all (scripts/run-cluster.sh).
run-cluster: all
	@scripts/deps.sh cluster
	scripts/run-cluster.sh $(BUILD)

# Each interop file is its own CTest test (interop.test_X), and every test
# takes free ports of its own, so ctest runs JOBS of them at a time.
test: test-deps format-check
	cmake -S . -B $(BUILD) -DTERN_WERROR=ON -DTERN_REQUIRE_TESTS=ON >/dev/null
	cmake --build $(BUILD) -j $(JOBS)
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -LE cluster_mode_more
	cmake -S . -B $(ASAN_BUILD) -DTERN_SANITIZE=ON -DTERN_WERROR=ON -DTERN_REQUIRE_TESTS=ON \
		-DCMAKE_BUILD_TYPE=Debug >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j $(JOBS)
	$(MAKE) fuzz-smoke
	@echo "make test: all suites passed"

# The whole interop suite in cluster mode (TERN_TEST_CLUSTER=1: every broker
# a single-node cluster on a nats-server of the test process's own); `make
# test` runs a part of it (tests/CMakeLists.txt, TERN_CLUSTER_MODE_FILES).
test-cluster: test-deps
	cmake -S . -B $(BUILD) -DTERN_WERROR=ON -DTERN_REQUIRE_TESTS=ON >/dev/null
	cmake --build $(BUILD) -j $(JOBS)
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -L '^cluster_mode'
	@echo "make test-cluster: all suites passed"

# The unit tests and the interop suite (2 workers) under ThreadSanitizer;
# any report fails the run (halt_on_error: a broker that reports a race
# exits, and the test that saw it fails with the report in its log tail).
# Slow (tens of minutes), so not part of `make test`. One test at a time, not
# JOBS: ThreadSanitizer slows the broker some tenfold, and two suites sharing
# the cores would push the tests' own waits past their limits.
TSAN_OPTIONS_RUN ?= halt_on_error=1:second_deadlock_stack=1:history_size=4
tsan: test-deps
	cmake -S . -B $(TSAN_BUILD) -DTERN_TSAN=ON -DTERN_WERROR=ON -DTERN_REQUIRE_TESTS=ON >/dev/null
	cmake --build $(TSAN_BUILD) -j $(JOBS)
	cd $(TSAN_BUILD) && TSAN_OPTIONS=$(TSAN_OPTIONS_RUN) \
		ctest --output-on-failure -L 'unit|interop'
	@echo "make tsan: no race reported"

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	@out=$$(clang-format --dry-run $$(git ls-files '*.c' '*.h') 2>&1); \
	if [ -n "$$out" ]; then echo "$$out" | head -40; \
		echo "format-check: run 'make format'"; exit 1; fi; echo "format-check: ok"

$(FUZZ_BUILD)/fuzz/fuzz_decode:
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DTERN_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
	cmake --build $(FUZZ_BUILD) -j $(JOBS)

fuzz-smoke: $(FUZZ_BUILD)/fuzz/fuzz_decode
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	fuzz/run.sh $(FUZZ_BUILD)/fuzz $(FUZZ_SECONDS)

fuzz:
	$(MAKE) fuzz-smoke FUZZ_SECONDS=$${FUZZ_SECONDS:-300}

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD)
