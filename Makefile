# The two commands of the README:
#   make demo   build the tool and run the default workload (report, trace and plot in build/demo/)
#   make test   install what is missing, then build and run the whole suite in the optimised,
#               ASan+UBSan (g++) and TSan (clang) builds, plus the clang-format check.
# Smaller steps: make build, make test-release, make test-asan, make test-tsan, make format-check,
# make bench.

PRESETS := release asan tsan

.PHONY: all deps build test format-check bench demo clean $(addprefix test-,$(PRESETS) debug)

all: build

deps:
	@scripts/install-deps.sh

build: deps
	cmake --preset release
	cmake --build --preset release

test: deps format-check $(addprefix test-,$(PRESETS))
	@echo "uttm: all builds passed (release, asan, tsan) and the format check is clean"

$(addprefix test-,$(PRESETS) debug): test-%: deps
	cmake --preset $*
	cmake --build --preset $*
	ctest --preset $*

format-check: deps
	@scripts/check-format.sh

bench: build
	@for b in build/release/bench/*_bench; do echo "== $$b"; $$b --benchmark_repetitions=5 --benchmark_report_aggregates_only=true; done

demo: build
	@if [ -x build/release/tools/uttm/uttm ]; then scripts/demo.sh; else echo "uttm: build/release/tools/uttm/uttm was not built"; exit 1; fi

clean:
	rm -rf build
