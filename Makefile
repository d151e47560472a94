# The two commands of the README:
#   make demo   build the tool and run the default workload (report, trace and plot in build/demo/)
#   make test   install what is missing, then build and run the whole suite in the optimised,
#               ASan+UBSan (g++) and TSan (clang) builds, the clang-format check and a one-minute
#               run of the object-ops fuzzer (clang, ASan+UBSan, libFuzzer).
# Smaller steps: make build, make test-release, make test-asan, make test-tsan, make format-check,
# make bench, make fuzz (FUZZ_SECONDS=600 by default).

PRESETS := release asan tsan
FUZZ_SECONDS ?= 600
FUZZ_SMOKE_SECONDS ?= 60

# ccache (when installed) shares compiled objects between checkouts of this tree.
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := true

.PHONY: all deps build test format-check bench demo clean fuzz fuzz-build fuzz-smoke \
	$(addprefix test-,$(PRESETS) debug)

all: build

deps:
	@scripts/install-deps.sh

build: deps
	cmake --preset release
	cmake --build --preset release

test: deps format-check $(addprefix test-,$(PRESETS)) fuzz-smoke
	@echo "uttm: all builds passed (release, asan, tsan), the format check is clean and the fuzzer ran clean"

$(addprefix test-,$(PRESETS) debug): test-%: deps
	cmake --preset $*
	cmake --build --preset $*
	ctest --preset $*

fuzz-build: deps
	cmake --preset fuzz
	cmake --build --preset fuzz

fuzz: fuzz-build
	@scripts/run-fuzzer.sh $(FUZZ_SECONDS)

fuzz-smoke: fuzz-build
	@scripts/run-fuzzer.sh $(FUZZ_SMOKE_SECONDS)

format-check: deps
	@scripts/check-format.sh

bench: build
	@for b in build/release/bench/*_bench; do echo "== $$b"; $$b --benchmark_repetitions=5 --benchmark_report_aggregates_only=true; done

demo: build
	@scripts/demo.sh

clean:
	rm -rf build
