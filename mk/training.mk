# Training package targets (senclip-train). Data paths are arguments: nothing is downloaded here.
.PHONY: test-training bench-eurosat bench-bigearthnet
EUROSAT ?= build/data/EuroSAT
BIGEARTHNET ?= build/data/BigEarthNet
BENCH_MODEL ?= senclip-vitb32-avgpool
BENCH_STYLE ?= ground

test-training:  ## training package tests only (CPU, ~1 min)
	$(PY) -m pytest tests/training

bench-eurosat:  ## zero-shot EuroSAT: EUROSAT=folder BENCH_MODEL=id BENCH_STYLE=generic|aerial|ground
	$(BIN)/senclip-train bench eurosat --root $(EUROSAT) --model $(BENCH_MODEL) --prompt-style $(BENCH_STYLE) --out build/bench/eurosat-$(BENCH_MODEL)-$(BENCH_STYLE)

bench-bigearthnet:  ## zero-shot BigEarthNet-19 (S2 v1 folders or torchgeo layout)
	$(BIN)/senclip-train bench bigearthnet --root $(BIGEARTHNET) --model $(BENCH_MODEL) --prompt-style $(BENCH_STYLE) --out build/bench/ben-$(BENCH_MODEL)-$(BENCH_STYLE)
