# stylefs: top-level build.
#
#   make                     build ./stylefs (CPU engine; CUDA engine when nvcc is found)
#   make USE_CUDA=no         never build the CUDA engine
#   make USE_CUDA=yes        require it: fail if nvcc is missing
#   make SANITIZE=address,undefined   build everything with sanitizers
#   make test                run the test suite (ends with "N passed, N failed")
#   make test TESTS="unit t_cli"   run a part of it
#   make test-arm64          cross-build for aarch64, test under qemu (make arm64-deps first)
#   make models              copy or download the pretrained styles into ./models
#   make bench               time the CPU engine against ONNX Runtime (-> docs/performance.md)
#   make devkit              gather what tests/gpu.sh needs on a GPU machine
#   make install PREFIX=...  install binary, man page and styles
#
# Every object goes to build/ with a -MMD dependency file next to it.

PREFIX    ?= /usr/local
DESTDIR   ?=
CC        ?= cc
PKG_CONFIG ?= pkg-config
BUILD     := build
SHARED    ?= ../shared

PKGS      := lmdb libxxhash stb fuse3 libturbojpeg libcjson zlib libdeflate hiredis libcrypto libwebp libwebpdemux libwebpmux libtiff-4 libheif
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs lmdb libxxhash fuse3 libturbojpeg libcjson zlib libdeflate hiredis libcrypto libwebp libwebpdemux libwebpmux libtiff-4 libheif 2>/dev/null)

CFLAGS    ?= -O2 -g
CFLAGS    += -std=c11 -Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unused-parameter \
             -Werror=incompatible-pointer-types -Werror=implicit-function-declaration -Werror=int-conversion \
             -D_GNU_SOURCE -DFUSE_USE_VERSION=314 \
             -DSTYLEFS_PREFIX='"$(PREFIX)"' -fopenmp \
             -Isrc -Icache -Icpu -Iarbitrary $(PKG_CFLAGS)
DNNL_CFLAGS ?=
DNNL_LIBS ?= -ldnnl
CFLAGS    += $(DNNL_CFLAGS)
LDLIBS    += $(PKG_LIBS) $(DNNL_LIBS) -lm -lpthread -ldl -fopenmp

ifneq ($(SANITIZE),)
CFLAGS    += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
LDFLAGS   += -fsanitize=$(SANITIZE)
endif

# ---- CUDA detection -------------------------------------------------------
# With nvcc and cuDNN's header found, the CUDA engine is built as a module,
# stylefs-cuda.so, that ./stylefs loads at run time (engine.c): the binary
# itself never links CUDA, so one build runs on machines with and without
# a GPU.
NVCC      ?= $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))
CUDA_ARCH ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
             -gencode arch=compute_90,code=compute_90
NVFLAGS   ?= -O3 -std=c++17 -lineinfo
CUDNN_H   := $(wildcard $(CUDA_HOME)/include/cudnn.h)
USE_CUDA  ?= auto
ifeq ($(USE_CUDA),yes)
  ifeq ($(NVCC),)
    $(error USE_CUDA=yes but nvcc was not found (set NVCC=/path/to/nvcc))
  endif
  ifeq ($(CUDNN_H),)
    $(error USE_CUDA=yes but cudnn.h was not found under $(CUDA_HOME)/include (install cuDNN there))
  endif
  HAVE_CUDA := 1
else ifeq ($(USE_CUDA),no)
  HAVE_CUDA :=
else
  HAVE_CUDA := $(if $(and $(NVCC),$(CUDNN_H)),1,)
endif
CUDA_WHY  := $(if $(filter no,$(USE_CUDA)),USE_CUDA=no,$(if $(NVCC),cudnn.h not found under $(CUDA_HOME)/include,nvcc not found))

# Rebuild everything when the compiler or flags change (SANITIZE=..., CFLAGS=...).
FLAGS_NOW := $(CC) $(CFLAGS) $(LDFLAGS) $(LDLIBS) cuda=$(HAVE_CUDA) $(NVCC) $(NVFLAGS) $(CUDA_ARCH)
ifneq ($(FLAGS_NOW),$(file < $(BUILD)/.flags))
$(shell mkdir -p $(BUILD))
$(file > $(BUILD)/.flags,$(FLAGS_NOW))
endif

# The CPU engine (cpu/): each instruction set's kernels in a file of their
# own, built with that file's flags (cpu/cpu.h says how one is chosen).
ARCH      := $(shell $(CC) -dumpmachine 2>/dev/null | cut -d- -f1)
CPU_C     := cpu/cpu_engine.c cpu/bands.c cpu/plan.c cpu/features.c cpu/kern_ref.c
ifeq ($(ARCH),x86_64)
CPU_C     += cpu/kern_avx2.c cpu/kern_avx512.c cpu/kern_avx512_vnni.c cpu/kern_avx512_bf16.c
else ifeq ($(ARCH),aarch64)
CPU_C     += cpu/kern_neon.c
endif
# Paintings as styles (arbitrary/): the TFLite reader and runner and
# Magenta's two networks on top of them.
ARB_C     := arbitrary/tflite.c arbitrary/tflnet.c arbitrary/arbitrary.c
AVX512    := -mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma -mavx2
SRC_C   := src/main.c src/cli.c src/cli_stylize.c src/cli_cache.c src/cli_warm.c src/cli_worker.c src/log.c src/util.c \
           src/cli_mount.c src/style.c src/layers.c src/image.c src/codecs.c src/meta.c src/engine.c src/idle.c src/pipeline.c \
           src/stb_impl.c src/fs.c $(ARB_C) cache/cache.c cache/remote.c $(CPU_C)
LIB_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(filter-out src/main.c,$(SRC_C)))
MAIN_OBJ := $(BUILD)/src/main.o
# The test programs: the suites (tests/), the helpers the scripts call
# (tests/helper/) and the bench's (tests/bench/).  Each builds to
# build/tests/NAME, whichever folder its source is in.
TEST_PROGS := tests/unit tests/kernels tests/helper/mkimg tests/helper/imgcmp tests/helper/tflcheck tests/helper/forge \
              tests/bench/peak tests/bench/netbench
TEST_BIN := $(foreach p,$(TEST_PROGS),$(BUILD)/tests/$(notdir $(p))) $(BUILD)/tests/fault_inject.so \
            $(BUILD)/examples/gallery

.PHONY: all clean test test-arm64 arm64-deps print-deps models bench install uninstall deps demo undemo config golden golden-arbitrary fuzz-tflite devkit gallery \
        fuzz stress

BIN       ?= stylefs
all: config $(BIN) $(if $(HAVE_CUDA),stylefs-cuda.so)

config:
	@echo "stylefs build: CC=$(CC) SANITIZE=$(or $(SANITIZE),none)"
	@$(PKG_CONFIG) --exists $(PKGS) || { echo "missing build dependencies; run: make deps (as root) or apt-get install $(DEBIAN_DEPS)"; exit 1; }
	@v=$$(printf '#include <oneapi/dnnl/dnnl_version.h>\nDNNL_VERSION_MAJOR DNNL_VERSION_MINOR\n' | \
	     $(CC) $(DNNL_CFLAGS) -E -P - 2>/dev/null | tail -n 1); \
	 case "$$v" in "2 "*) echo "  CPU engine: oneDNN $$(echo $$v | tr ' ' .) ($(ARCH))";; \
	 "") echo "oneDNN's headers were not found: make deps (as root) or apt-get install libdnnl-dev"; exit 1;; \
	 *) echo "stylefs uses oneDNN's 2.x API; found oneDNN $$(echo $$v | tr ' ' .) (install Debian 12's libdnnl-dev 2.x)"; exit 1;; esac
	@echo "  CUDA: $(if $(HAVE_CUDA),nvcc at $(NVCC) and cuDNN at $(CUDNN_H): building the GPU engine module stylefs-cuda.so,not built ($(CUDA_WHY)): CPU engine only)"

$(BIN): $(MAIN_OBJ) $(LIB_OBJ) $(BUILD)/.flags
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LDLIBS)

$(BUILD)/src/stb_impl.o: CFLAGS += -Wno-unused-but-set-variable -Wno-shadow
$(BUILD)/cpu/%.o: CFLAGS += -ffp-contract=fast
$(BUILD)/cpu/kern_avx2.o: CFLAGS += -mavx2 -mfma
$(BUILD)/cpu/kern_avx512.o: CFLAGS += $(AVX512)
$(BUILD)/cpu/kern_avx512_vnni.o: CFLAGS += $(AVX512) -mavx512vnni
$(BUILD)/cpu/kern_avx512_bf16.o: CFLAGS += $(AVX512) -mavx512bf16

$(BUILD)/%.o: %.c $(BUILD)/.flags | config
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

define test_prog
$(BUILD)/tests/$(notdir $(1)): $(BUILD)/$(1).o $$(LIB_OBJ)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach p,$(TEST_PROGS),$(eval $(call test_prog,$(p))))

# an LD_PRELOAD library that makes chosen library calls fail (tests only)
$(BUILD)/tests/fault_inject.so: tests/helper/fault_inject.c $(BUILD)/.flags
	@mkdir -p $(@D)
	$(CC) $(filter-out -fsanitize=%,$(CFLAGS)) -fPIC -shared -o $@ $< -ldl

$(BUILD)/examples/%: $(BUILD)/examples/%.o $(LIB_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# One sample photo in every style, as one picture: build/gallery.png.
GALLERY_PHOTO ?= $(firstword $(wildcard $(SHARED)/images/*.jpg) $(wildcard samples/*.jpg))
GALLERY_STYLES ?= $(if $(wildcard $(MODELS_STAMP)),models,$(SHARED)/models)
GALLERY_PAINTINGS ?= $(wordlist 2,4,$(wildcard $(SHARED)/images/*.jpg))
GALLERY_ARBITRARY ?= $(if $(wildcard models/arbitrary),models/arbitrary,$(SHARED)/arbitrary)
# GALLERY_PAINTINGS: up to three images used as painting styles (the sample
# photos stand in: no paintings are shipped), with the networks in
# GALLERY_ARBITRARY; an empty list leaves that row out.
gallery: all $(BUILD)/examples/gallery
	@test -n "$(GALLERY_PHOTO)" || { echo "no photo: set GALLERY_PHOTO=path.jpg"; exit 1; }
	SF=./stylefs GALLERY=$(BUILD)/examples/gallery ARBITRARY=$(GALLERY_ARBITRARY) sh examples/gallery.sh \
	  "$(GALLERY_PHOTO)" $(BUILD)/gallery.png "$(GALLERY_STYLES)" $(GALLERY_PAINTINGS)

# ---- the CUDA engine module -------------------------------------------------
CUDA_LIBS := -L$(CUDA_HOME)/lib64 -lcudart_static -lrt -ldl -lpthread -lstdc++ -lm
CUDA_OBJ  := $(BUILD)/kernels/sf_kernels.o $(BUILD)/kernels/twins.pic.o $(BUILD)/kernels/engine_cuda.pic.o \
             $(BUILD)/src/layers.pic.o
ifneq ($(HAVE_CUDA),)
TEST_BIN  += $(BUILD)/tests/gpu_check
endif

$(BUILD)/kernels/%.o: kernels/%.cu kernels/sf_kernels.h $(BUILD)/.flags | config
	@mkdir -p $(@D)
	$(NVCC) $(NVFLAGS) $(CUDA_ARCH) -Xcompiler -fPIC -Ikernels -c -o $@ $<

$(BUILD)/%.pic.o: %.c $(BUILD)/.flags | config
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -fPIC -Ikernels -I$(CUDA_HOME)/include -MMD -MP -c -o $@ $<

stylefs-cuda.so: $(CUDA_OBJ) kernels/engine_cuda.map
	$(CC) $(LDFLAGS) -shared -o $@ $(CUDA_OBJ) $(CUDA_LIBS) -lcudnn -Wl,-rpath,$(CUDA_HOME)/lib64 \
	  -Wl,--no-undefined -Wl,--version-script=kernels/engine_cuda.map

$(BUILD)/tests/gpu_check: $(BUILD)/tests/gpu_check.pic.o $(BUILD)/kernels/sf_kernels.o $(BUILD)/kernels/twins.pic.o
	$(CC) $(LDFLAGS) -o $@ $^ $(CUDA_LIBS)

# ---- data -----------------------------------------------------------------
# The nine networks (ml5, MIT licence) and Magenta's arbitrary-style networks
# for paintings (Apache-2.0; TensorFlow Hub's TFLite conversions, each
# checked against the SHA-256 pinned here).  ../shared is the offline
# source (tests, CI); without it they are downloaded.  matilde_perez is
# left out by default (README: its weights paint every photo as blue
# stripes); STYLE_NAMES=... chooses.
STYLE_NAMES ?= la_muse mathura matta rain_princess scream udnie wave wreck
MODELS_URL  := https://raw.githubusercontent.com/ml5js/ml5-data-and-models/master/models/style-transfer
ARB_URL     := https://tfhub.dev/google/lite-model/magenta/arbitrary-image-stylization-v1-256
# file, its path under ARB_URL, its SHA-256
ARB_FILES   := predict_int8.tflite,int8/prediction/1,af6ad4b2e7aeba0675f32636082ab915ced5375229a3f8aff7e714c6213f5ed2 \
               transfer_fp16.tflite,fp16/transfer/1,53b5243ed5aa33e408db7976c8a8e51a90a0f7708fd122a31428cd00fbdf6aa6 \
               transfer_int8.tflite,int8/transfer/1,7a1550643cf034a4d813c0aa276976cd15da4141b4f1ec3631db1d0d9c8e2cd1
# fetch URL FILE: download, or say clearly why not and fail
FETCH = fetch() { curl -fsSL --retry 2 -o "$$2.part" "$$1" 2>/dev/null && mv "$$2.part" "$$2" || { rm -f "$$2.part"; \
          echo "make: cannot download $$1 (offline, or the address moved): put the files in $(SHARED) beside the" \
               "project, or fetch them by hand (README: Install and build)" >&2; exit 1; }; }
# Styles whose networks paint a frame along the edges unless run on a photo
# mirrored out by some pixels (measured: docs/design.md); their manifests
# say so to stylefs (the "stylefs" key, model.h pad).
STYLE_PADS  := la_muse:48 mathura:48 matta:48 rain_princess:48
MODELS_DIR  ?= models
# bumped when what `make models` writes changes, so an older models/ is redone
MODELS_STAMP := $(MODELS_DIR)/.stamp-2

models: $(MODELS_STAMP)
$(MODELS_STAMP):
	@$(FETCH); M=$(MODELS_DIR); mkdir -p $$M; \
	for s in $(STYLE_NAMES); do \
	  if [ -d "$(SHARED)/models/$$s" ]; then rm -rf $$M/$$s; cp -r "$(SHARED)/models/$$s" $$M/; \
	  else echo "downloading $$s from the ml5 repository"; mkdir -p $$M/$$s && \
	    fetch $(MODELS_URL)/$$s/manifest.json $$M/$$s/manifest.json && \
	    for f in $$(sed -n 's/.*"filename": *"\([^"]*\)".*/\1/p' $$M/$$s/manifest.json); do \
	      fetch $(MODELS_URL)/$$s/$$f $$M/$$s/$$f; done; fi; done; \
	echo "styles: $(STYLE_NAMES)"; \
	for e in $(STYLE_PADS); do s=$${e%%:*}; pad=$${e#*:}; [ -f $$M/$$s/manifest.json ] || continue; \
	  python3 -c 'import json,sys; p=sys.argv[1]; m=json.load(open(p)); m["stylefs"]={"pad":int(sys.argv[2])}; json.dump(m,open(p,"w"),indent=1)' \
	    $$M/$$s/manifest.json $$pad || exit 1; done; \
	echo "mirror padding (in their manifests): $(STYLE_PADS)"
	@$(FETCH); M=$(MODELS_DIR); mkdir -p $$M/arbitrary; \
	for e in $(ARB_FILES); do f=$${e%%,*}; rest=$${e#*,}; path=$${rest%%,*}; sum=$${rest#*,}; \
	  if [ -f "$(SHARED)/arbitrary/$$f" ]; then cp "$(SHARED)/arbitrary/$$f" $$M/arbitrary/$$f; \
	  else echo "downloading $$f from TensorFlow Hub"; fetch "$(ARB_URL)/$$path?lite-format=tflite" $$M/arbitrary/$$f; fi; \
	  if [ "$$(sha256sum < $$M/arbitrary/$$f | cut -d' ' -f1)" != "$$sum" ]; then \
	    echo "make: $$M/arbitrary/$$f: its SHA-256 is not the pinned $$sum; removed" >&2; rm -f $$M/arbitrary/$$f; exit 1; fi; \
	done; echo "painting networks: $$M/arbitrary (SHA-256 checked; Apache-2.0, Magenta)"
	@touch $@

# ---- tests ----------------------------------------------------------------
test: all $(TEST_BIN)
	@SHARED=$(SHARED) TESTS="$(TESTS)" sh tests/run.sh

# The report goes to the terminal and, whole, to docs/performance.md.
bench: all $(TEST_BIN)
	@mkdir -p $(BUILD)/bench
	@bash -o pipefail -c 'SHARED=$(SHARED) sh tests/bench/bench.sh 2>&1 | tee $(BUILD)/bench/report.txt'; rc=$$?; \
	  sh tests/bench/report.sh $(BUILD)/bench/report.txt $$rc >docs/performance.md; \
	  echo "report written to docs/performance.md"; exit $$rc

# aarch64: a cross build (Debian's arm64 packages; `make arm64-deps` installs
# them as root) and its tests under qemu-user, on a NEON-only CPU
# (neoverse-n1: Graviton2, Raspberry Pi 4/5 class) and with SVE (max).
# Debian's libdnnl-dev cannot be installed for two architectures at once
# (they share dnnl_config.h), so its arm64 headers are unpacked into
# build-arm64/dnnl and the library is linked by its soname.
ARM64      := build-arm64
ARM64_DEBS := crossbuild-essential-arm64 qemu-user pkgconf:arm64 liblmdb-dev:arm64 libxxhash-dev:arm64 \
              libstb-dev:arm64 libfuse3-dev:arm64 libturbojpeg0-dev:arm64 libcjson-dev:arm64 zlib1g-dev:arm64 \
              libdeflate-dev:arm64 libdnnl2:arm64 libgomp1:arm64 libhiredis-dev:arm64 libssl-dev:arm64 \
              libwebp-dev:arm64 libtiff-dev:arm64 libheif-dev:arm64
ARM64_MAKE := $(MAKE) --no-print-directory BUILD=$(ARM64)/obj BIN=$(ARM64)/stylefs CC=aarch64-linux-gnu-gcc \
              PKG_CONFIG=aarch64-linux-gnu-pkg-config USE_CUDA=no DNNL_CFLAGS=-I$(ARM64)/dnnl/usr/include \
              DNNL_LIBS=-l:libdnnl.so.2
arm64-deps:
	@if [ "$$(id -u)" = 0 ]; then \
	  dpkg --add-architecture arm64 && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(ARM64_DEBS) >/dev/null; \
	else echo "run as root: dpkg --add-architecture arm64; apt-get install --no-install-recommends $(ARM64_DEBS)"; exit 1; fi
$(ARM64)/dnnl/usr/include/dnnl.h:
	@command -v aarch64-linux-gnu-gcc >/dev/null || { echo "no aarch64 cross compiler: make arm64-deps (as root)"; exit 1; }
	@mkdir -p $(ARM64)/dnnl
	cd $(ARM64) && rm -f libdnnl-dev_*arm64.deb && apt-get download libdnnl-dev:arm64 && \
	  dpkg-deb -x libdnnl-dev_*_arm64.deb dnnl
test-arm64: $(ARM64)/dnnl/usr/include/dnnl.h
	@$(ARM64_MAKE) $(ARM64)/stylefs $(ARM64)/obj/tests/unit $(ARM64)/obj/tests/kernels $(ARM64)/obj/tests/imgcmp \
	  $(ARM64)/obj/tests/mkimg $(ARM64)/obj/tests/tflcheck
	@SHARED=$(SHARED) sh tests/arm64.sh $(ARM64)

# The fault and load tests alone, with a three-minute load phase.
stress: all $(TEST_BIN)
	@mkdir -p $(BUILD)/stress && rm -rf $(BUILD)/stress/*
	@SHARED=$(SHARED) STRESS_SECONDS=$${STRESS_SECONDS:-180} sh tests/t_faults.sh $(CURDIR)/$(BUILD)/stress

# libFuzzer over the decode-and-guard path (tests/fuzz/fuzz_decode.c), built
# with clang, ASan and UBSan; seeded with the hardening tests' inputs at
# small sizes; runs FUZZ_SECONDS (300).  Not part of `make test`.
FUZZ_DIR  := $(BUILD)/fuzz
FUZZ_SRC  := tests/fuzz/fuzz_decode.c src/image.c src/codecs.c src/meta.c src/util.c src/stb_impl.c
FUZZ_SECONDS ?= 300
$(FUZZ_DIR)/fuzz_decode: $(FUZZ_SRC) src/image.h
	@command -v clang >/dev/null || { echo "make fuzz needs clang (apt-get install clang)"; exit 1; }
	@mkdir -p $(@D)
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Isrc \
	  $(shell $(PKG_CONFIG) --cflags $(PKGS)) -o $@ $(FUZZ_SRC) $(shell $(PKG_CONFIG) --libs $(PKGS)) -lm
fuzz: $(FUZZ_DIR)/fuzz_decode $(BUILD)/tests/mkimg
	@mkdir -p $(FUZZ_DIR)/seeds $(FUZZ_DIR)/corpus $(FUZZ_DIR)/findings
	@sh tests/fuzz/fuzz_seeds.sh $(BUILD)/tests/mkimg $(FUZZ_DIR)/seeds
	LSAN_OPTIONS=suppressions=tests/fuzz/lsan.supp:print_suppressions=0 $(FUZZ_DIR)/fuzz_decode -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -rss_limit_mb=2048 \
	  -artifact_prefix=$(FUZZ_DIR)/findings/ -print_final_stats=1 $(FUZZ_DIR)/corpus $(FUZZ_DIR)/seeds

# libFuzzer over the TFLite reader and runner (tests/fuzz/fuzz_tflite.c), seeded
# with ../shared/arbitrary's three models; runs FUZZ_SECONDS.  Not part of
# `make test`, which runs a deterministic damage pass (tests/helper/tflcheck.c).
$(FUZZ_DIR)/fuzz_tflite: tests/fuzz/fuzz_tflite.c $(ARB_C) arbitrary/tflite.h arbitrary/tflnet.h cpu/cpu.h
	@command -v clang >/dev/null || { echo "make fuzz-tflite needs clang (apt-get install clang)"; exit 1; }
	@mkdir -p $(@D)
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Isrc -Icpu -Iarbitrary -o $@ \
	  tests/fuzz/fuzz_tflite.c arbitrary/tflite.c arbitrary/tflnet.c -lm
fuzz-tflite: $(FUZZ_DIR)/fuzz_tflite
	@mkdir -p $(FUZZ_DIR)/tfl_seeds $(FUZZ_DIR)/tfl_corpus $(FUZZ_DIR)/tfl_findings
	cp $(SHARED)/arbitrary/*.tflite $(FUZZ_DIR)/tfl_seeds/
	$(FUZZ_DIR)/fuzz_tflite -max_total_time=$(FUZZ_SECONDS) -max_len=3000000 -rss_limit_mb=4096 \
	  -artifact_prefix=$(FUZZ_DIR)/tfl_findings/ -print_final_stats=1 $(FUZZ_DIR)/tfl_corpus $(FUZZ_DIR)/tfl_seeds

# LiteRT's outputs for tests/t_arbitrary.sh (npm; see tests/make_golden_arb.sh).
golden-arbitrary: $(BUILD)/tests/mkimg
	@SHARED=$(SHARED) sh tests/golden/make_golden_arb.sh

# Everything tests/gpu.sh needs on a GPU machine that has none of our
# Debian libraries: the binaries, their shared libraries, one style and
# the sample photos, in .devkit/ (git-ignored; carried by the device tool).
devkit: all $(TEST_BIN)
	@rm -rf .devkit && mkdir -p .devkit/bin .devkit/lib .devkit/models .devkit/images
	cp stylefs stylefs-cuda.so $(TEST_BIN) .devkit/bin/
	# every shared library the binaries need except the C runtime itself
	# (libdnnl needs libOpenCL, stylefs libdeflate, ...); gpu.sh checks
	# with ldd that nothing is missing there
	for l in $$(ldd stylefs $(TEST_BIN) | awk '/=> \//{print $$3}' | sort -u | \
	            grep -vE '/(libc|libm|libpthread|libdl|librt|ld-linux[^/]*|libgcc_s|libstdc\+\+)\.so'); do \
	  cp -L $$l .devkit/lib/; done
	cp -r $(SHARED)/models/udnie .devkit/models/
	cp $(SHARED)/images/* .devkit/images/ 2>/dev/null || true
	cp -L $$(command -v fusermount3) .devkit/bin/ 2>/dev/null || true
	strip .devkit/bin/* .devkit/lib/* 2>/dev/null || true
	@du -sh .devkit

# ---- dependencies -----------------------------------------------------------
# The one list of Debian packages to build and test stylefs (make deps,
# .ci/run and the README use it): build, run, and what the tests call
# (mdb_stat, GNU time, python3 and curl for the HTTP example, exiftool; the photo
# formats' own tools, which make the tests' HEIC, AVIF, WebP and TIFF files).
DEBIAN_DEPS := build-essential pkg-config liblmdb-dev libxxhash-dev libstb-dev libfuse3-dev fuse3 \
               libturbojpeg0-dev libcjson-dev libdnnl-dev zlib1g-dev libdeflate-dev lmdb-utils time \
               python3 curl util-linux libhiredis-dev libssl-dev redis-server \
               libwebp-dev libtiff-dev libheif-dev libheif-examples webp libavif-bin libtiff-tools \
               libjpeg-turbo-progs libimage-exiftool-perl
# make bench's second peer, PyTorch (tests/bench/torch_bench.py); no test
# needs it, so CI leaves it out (make deps BENCH_DEPS=)
BENCH_DEPS  := python3-torch python3-numpy

deps:
	@if [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    $(DEBIAN_DEPS) $(BENCH_DEPS) >/dev/null; \
	else echo "run as root: apt-get install $(DEBIAN_DEPS) $(BENCH_DEPS)"; exit 1; fi

print-deps:
	@echo $(DEBIAN_DEPS)

install: all models
	install -D -m 755 stylefs $(DESTDIR)$(PREFIX)/bin/stylefs
	@if [ -f stylefs-cuda.so ]; then install -D -m 755 stylefs-cuda.so $(DESTDIR)$(PREFIX)/lib/stylefs/stylefs-cuda.so; fi
	install -D -m 644 man/stylefs.1 $(DESTDIR)$(PREFIX)/share/man/man1/stylefs.1
	@if [ -d models ]; then mkdir -p $(DESTDIR)$(PREFIX)/share/stylefs/styles && \
	  cp -r models/*/ $(DESTDIR)$(PREFIX)/share/stylefs/styles/ && \
	  echo "styles and the painting networks in $(DESTDIR)$(PREFIX)/share/stylefs/styles"; \
	else echo "no models/: run 'make models' first to install the styles"; fi

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/stylefs $(DESTDIR)$(PREFIX)/share/man/man1/stylefs.1 \
	  $(DESTDIR)$(PREFIX)/lib/stylefs/stylefs-cuda.so

clean:
	rm -rf $(BUILD) $(ARM64) stylefs stylefs-cuda.so .devkit

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

golden: $(TEST_BIN)
	SHARED=$(SHARED) sh tests/golden/make_golden.sh

# ---- demo: build, fetch styles and sample photos, mount at ./mnt -------------
DEMO_PHOTOS_URL := https://raw.githubusercontent.com/ml5js/ml5-library/main/examples/p5js/StyleTransfer/StyleTransfer_Image/img/patagonia.jpg
demo:
	@missing=; for p in $(DEBIAN_DEPS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "missing packages; run: sudo apt-get install$$missing"; exit 1; fi; fi
	@$(MAKE) --no-print-directory all models
	@mkdir -p samples mnt
	@if [ -d "$(SHARED)/images" ]; then cp $(SHARED)/images/* samples/; \
	 else $(FETCH); fetch $(DEMO_PHOTOS_URL) samples/patagonia.jpg; fi
	@mountpoint -q mnt || ./stylefs -o styles=models,cache=$(CURDIR)/build/demo-cache samples mnt
	@echo; echo "Mounted samples/ at ./mnt. Try:"
	@echo "  ls mnt/styled/"
	@echo "  ls -l mnt/styled/wave/"
	@echo "  cp mnt/styled/wave/$$(ls samples | head -1) /tmp/   # first read stylizes (a second or two)"
	@echo "  cat mnt/.stats                                      # hits, misses, computes"
	@echo "  ./stylefs stats --cache build/demo-cache"
	@echo "  make undemo                                         # unmount"

undemo:
	@if ! mountpoint -q mnt 2>/dev/null; then echo "nothing mounted on ./mnt"; \
	elif fusermount3 -u mnt || umount mnt; then echo "unmounted ./mnt"; \
	else echo "could not unmount ./mnt (busy? close what uses it)"; exit 1; fi
.PRECIOUS: $(BUILD)/examples/%.o $(BUILD)/tests/%.o $(BUILD)/tests/helper/%.o $(BUILD)/tests/bench/%.o
