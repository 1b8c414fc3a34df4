# Performance benchmarks (issue 5); not part of `make test`. BENCH_QUICK=1 for a short run.
.PHONY: bench bench-quick bench-autotune
BENCH_ARGS ?=

bench:  ## performance suite: prints ratios, writes bench/results/latest.{json,md} (~15 min; BENCH_QUICK=1 ~4 min)
	$(PY) -m bench.run $(BENCH_ARGS)

bench-quick:  ## the performance suite on less data
	BENCH_QUICK=1 $(PY) -m bench.run $(BENCH_ARGS)

bench-autotune:  ## --precision auto: the table's choice beside the measured one (bench/results/autotune-*.md)
	BENCH_QUICK=1 $(PY) -m bench.autotune
