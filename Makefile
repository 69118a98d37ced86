# sockmesh: the two commands a user needs are `make demo` and `make test`.
# Everything else wraps CMake; the build lives in ./build.

BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

# Every package the build, tests, demo and benchmarks need (Debian 12).
DEPS := build-essential cmake ninja-build ccache pkg-config clang-14 llvm-14 libclang-rt-14-dev \
        clang-format-14 bpftool libbpf-dev libelf-dev zlib1g-dev liburing-dev \
        nlohmann-json3-dev libyaml-cpp-dev libgtest-dev libgmock-dev libbenchmark-dev \
        node-llhttp libssl-dev iproute2 iptables procps psmisc \
        nginx-light haproxy redis-server wrk nghttp2-client python3 linux-perf \
        buildah podman runc busybox curl

.PHONY: all deps build test test-unit test-kernel test-e2e demo demo-down bench fuzz format clean images

all: build

# Idempotent and quick: apt-get runs only when dpkg-query finds a package missing.
deps:
	@missing=$$(for p in $(DEPS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
	    | grep -q '^install ok installed$$' || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "make deps: missing $$missing; run as root (apt-get install)"; exit 1; fi; \
	echo "make deps: installing" $$missing; \
	DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja $(CMAKE_FLAGS)

build: $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS)

# All three tiers. Kernel and e2e tests skip (and say so) when not root. Like `make demo`,
# it installs what is missing first (deps, then the build: in that order, also under -j).
test: deps
	@$(MAKE) --no-print-directory build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 600

test-unit test-kernel test-e2e: test-%: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) -L '^$*$$'

# OCI images localhost/sockmesh-{loader,proxy}:dev with buildah, from scratch (root).
images: build
	deploy/images/build.sh $(BUILD_DIR)

# The bookinfo-on-Consul mesh (demo/README.md). MODE=ebpf|iptables; KEEP=1 leaves it up
# (stop it with `make demo-down`).
MODE ?= ebpf
demo: deps
	@$(MAKE) --no-print-directory build
	/usr/bin/python3 demo/demo.py --build-dir $(BUILD_DIR) --mode $(MODE) $(if $(KEEP),--keep)

demo-down:
	/usr/bin/python3 demo/demo.py down

# The whole mesh side by side (bench/mesh; root): $(BUILD_DIR)/bench/results.{json,md},
# chart.svg. QUICK=1: every scenario briefly. ALL=1: also the splice and sidecar benches.
bench: build
	@if [ ! -x bench/run ]; then echo "make bench: no benchmarks yet" >&2; exit 1; fi
	bench/run $(BUILD_DIR) $(if $(QUICK),--quick) $(if $(ALL),--all)

# Long fuzzing runs, one after the other: whole connections (SM_FUZZ_CONNECTION_SECONDS,
# default an hour), then HTTP heads and bodies (SM_FUZZ_HTTP_SECONDS). `make test` runs
# each for a few seconds. Crashes land in $(BUILD_DIR)/fuzz/.
fuzz: build
	cmake --build $(BUILD_DIR) --target fuzz-connection-long
	cmake --build $(BUILD_DIR) --target fuzz-http-long

format:
	find bpf common loader cni userspace tests bench -name '*.[ch]' -o -name '*.cpp' -o -name '*.hpp' \
	  | grep -v vmlinux.h | xargs clang-format-14 -i

clean:
	rm -rf $(BUILD_DIR)
