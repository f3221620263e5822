# One entry point for the whole tree. `make help` lists every target.
#
# Build output never goes into a step directory:
#   build/stepNN/server, build/client            plain build
#   build/san/stepNN/server, build/san/client    make SAN=1 (ASan + UBSan)

CC      ?= cc
CSTD    := -std=c11
WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
ifneq ($(CI),)
WARN    += -Werror
endif
CPPFLAGS := -D_GNU_SOURCE -Icommon
CFLAGS  ?= -O2 -g
LDLIBS  :=

ifeq ($(SAN),1)
B       := build/san
CFLAGS  := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
           -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
else
B       := build
endif

ALL_CFLAGS := $(CSTD) $(WARN) $(CFLAGS)

# The chapters that exist, e.g. step01_poll_chat -> target step01.
STEP_DIRS  := $(sort $(patsubst %/,%,$(wildcard step0[0-9]_*/)))
STEP_NAMES := $(foreach d,$(STEP_DIRS),$(firstword $(subst _, ,$(d))))
PLANNED    := step01 step02 step03 step04
MISSING    := $(filter-out $(STEP_NAMES),$(PLANNED))

COMMON_LIB := $(filter-out common/client.c,$(wildcard common/*.c))
COMMON_OBJ := $(patsubst %.c,$(B)/obj/%.o,$(COMMON_LIB))
CLIENT     := $(B)/client

# `make run` listens here; `nc 127.0.0.1 4444` then joins the room.
HOST ?= 127.0.0.1
PORT ?= 4444

.PHONY: all help test unit deps docs samples site-check sysv-demo bench profile demo run diff clean compile_commands.json \
        lint valgrind fuzz fuzz-build \
        $(STEP_NAMES) $(MISSING)

UNIT_TESTS := $(addprefix $(B)/tests/test_,line net outq room ring)
# The benchmark's yardstick: a plain epoll chat server, not a chapter.
PLAIN      := $(B)/bench/plain_epoll
# Chapter 3's System V sidebar: a two-window chat whose segment outlives
# a killed window.
SYSV_DEMO  := $(B)/sysv/sysv_demo

all: $(STEP_NAMES) $(UNIT_TESTS) $(PLAIN) $(SYSV_DEMO)

help:
	@echo "Targets (chapters present: $(STEP_NAMES))"
	@echo "  make stepNN           build one chapter: build/stepNN/server and build/client"
	@echo "  make all              build every chapter that exists"
	@echo "  make test             install missing test tools, build plain and SAN=1,"
	@echo "                        run every suite against both builds"
	@echo "  make run STEP=NN      start chapter NN on $(HOST):$(PORT) (PORT=, ARGS=-v to change)"
	@echo "  make diff FROM=NN TO=MM  what chapter MM changed: diff -ruN of two steps"
	@echo "  make demo             a scripted chat between three clients on the newest chapter"
	@echo "  make docs             the Doxygen site in build/docs (fails on any warning)"
	@echo "  make samples          rerun every session the pages show, into docs/samples/"
	@echo "                        (after a change to what a server prints; make test checks them)"
	@echo "  make sysv-demo        two windows chat through a System V segment and FIFOs:"
	@echo "                        the segment a killed window leaves in ipcs, and the cure"
	@echo "                        (IPC_RMID once both have attached)"
	@echo "  make site-check       make docs, then every page in headless Chromium at 1280 px:"
	@echo "                        links, images, sidebar, width; build/docs/screenshots/"
	@echo "  make bench            every chapter and Redis pub/sub under the same load:"
	@echo "                        build/bench/results.{md,csv}, plots (QUICK=1: a smoke run)"
	@echo "  make profile STEP=NN  perf profile of chapter NN serving 1000 clients"
	@echo "  make lint             cppcheck, clang-tidy and shellcheck over the whole tree"
	@echo "  make valgrind         a subset of every suite under valgrind memcheck"
	@echo "  make fuzz             libFuzzer on common/, then the protocol fuzzer on every"
	@echo "                        chapter, FUZZ_SECONDS (default 60) each (FUZZ_SEED=;"
	@echo "                        your own server: SERVER=path FUZZ_STEPS=step02)"
	@echo "  make deps             install bats, socat, nc, doxygen, graphviz... (apt-get)"
	@echo "  make compile_commands.json   compilation database for editors (bear)"
	@echo "  make clean            remove build/"
	@echo "Variables: SAN=1 (AddressSanitizer + UBSan into build/san), CI=1 (-Werror)"
	@echo "Run one suite:  make step01 && bats tests/step01"
	@echo "Fault suite of one chapter:  STEP=step03 bats tests/faults  (BUILD_DIR=\$$PWD/build/san: SAN=1)"
	@echo "Test your own server:  SERVER=path/to/server bats tests/step01"

# ---- building --------------------------------------------------------------

$(B)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(CLIENT): $(B)/obj/common/client.o $(COMMON_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# One server per chapter, from the chapter's sources and the common code.
define STEP_RULES
$(B)/$(1)/server: $(patsubst %.c,$(B)/obj/%.o,$(wildcard $(2)/*.c)) $(COMMON_OBJ)
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
$(1): $(B)/$(1)/server $(CLIENT)
endef
$(foreach d,$(STEP_DIRS),$(eval $(call STEP_RULES,$(firstword $(subst _, ,$(d))),$(d))))

$(MISSING):
	@echo "$@: this chapter is not written yet; chapters present: $(STEP_NAMES)" >&2
	@exit 1

$(B)/tests/test_line: $(B)/obj/tests/unit/test_line.o $(B)/obj/tests/unit/unit.o $(COMMON_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/tests/test_net: $(B)/obj/tests/unit/test_net.o $(B)/obj/tests/unit/unit.o $(COMMON_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/tests/test_outq: $(B)/obj/tests/unit/test_outq.o $(B)/obj/tests/unit/unit.o $(COMMON_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The room module is chapter 1's, carried unchanged into chapters 2 and 4.
$(B)/tests/test_room: $(B)/obj/tests/unit/test_room.o $(B)/obj/tests/unit/unit.o \
                      $(B)/obj/step01_poll_chat/room.o $(COMMON_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Chapter 4's rings (shm.c), as its workers use them.
$(B)/tests/test_ring: $(B)/obj/tests/unit/test_ring.o $(B)/obj/tests/unit/unit.o \
                      $(B)/obj/step04_procpool/shm.o $(COMMON_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(PLAIN): $(B)/obj/tests/bench/plain_epoll.o $(COMMON_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(SYSV_DEMO): $(B)/obj/docs/sysv/sysv_demo.o
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)

compile_commands.json:
	rm -rf build/obj
	bear -- $(MAKE) --no-print-directory all

clean:
	rm -rf build

# ---- using -----------------------------------------------------------------

# Chapter numbers may have one digit or two: STEP=1 is STEP=01.
two_digits = $(if $(filter 1 2 3 4 5 6 7 8 9,$(1)),0$(1),$(1))
RUN_STEP   := $(call two_digits,$(STEP))

# Quiet: the build prints nothing unless it fails (then its output, and the
# status), so the server's own lines come first on the terminal.
run:
	@test -n "$(STEP)" || { echo "usage: make run STEP=NN [PORT=$(PORT)] [ARGS=-v]" >&2; exit 2; }
	@out=$$($(MAKE) --no-print-directory -s step$(RUN_STEP) 2>&1) || \
	 { printf '%s\n' "$$out" >&2; exit 1; }
	@echo "Connect from other terminals with any of:"
	@echo "    build/client $(HOST) $(PORT)"
	@echo "    nc $(HOST) $(PORT)"
	@echo "    telnet $(HOST) $(PORT)"
	@echo "Stop the server with Ctrl-C."
	@exec $(B)/step$(RUN_STEP)/server $(ARGS) $(HOST) $(PORT)

# diff exits 1 when the steps differ (they always do) and dies of SIGPIPE
# (status 141) when a pager or head stops reading: neither is a failure.
diff:
	@test -n "$(FROM)" -a -n "$(TO)" || { echo "usage: make diff FROM=NN TO=MM" >&2; exit 2; }
	@from=$$(ls -d step$(call two_digits,$(FROM))_*/ 2>/dev/null | head -n 1); \
	 to=$$(ls -d step$(call two_digits,$(TO))_*/ 2>/dev/null | head -n 1); \
	 test -n "$$from" || { echo "no chapter step$(FROM)" >&2; exit 2; }; \
	 test -n "$$to" || { echo "no chapter step$(TO)" >&2; exit 2; }; \
	 same=; for f in "$$to"*; do \
	     cmp -s "$$f" "$$from$${f##*/}" && same="$$same $${f##*/}"; done; \
	 echo "carried unchanged from $${from%/}:$${same:- nothing}" >&2; \
	 diff -ruN "$${from%/}" "$${to%/}"; rc=$$?; \
	 test $$rc -le 1 || test $$rc -eq 141

demo: all
	@bash tests/demo.sh $(lastword $(STEP_NAMES))

deps:
	@bash tests/deps.sh install

docs:
	@bash tests/deps.sh check doxygen dot || bash tests/deps.sh install
	@mkdir -p build/docs
	doxygen docs/Doxyfile

# The transcripts and -v traces the pages include (docs/samples/), from a
# real run of every chapter's plain build (tests/docs/samples.sh);
# tests/docs/samples.bats fails when a committed one no longer matches.
samples:
	@bash tests/deps.sh check nc socat || bash tests/deps.sh install nc socat
	$(MAKE) --no-print-directory SAN= all
	@bash tests/docs/samples.sh update

# The transcript of docs/step03.md's System V section, from a real run
# (docs/sysv/demo.sh); tests/step03/sysv.bats compares the two.
sysv-demo: $(SYSV_DEMO)
	@bash tests/deps.sh check ipcs || bash tests/deps.sh install ipcs
	@bash docs/sysv/demo.sh $(SYSV_DEMO)

# Every page of the site rendered in headless Chromium (tests/docs/).
site-check:
	@bash tests/docs/check-site.sh

bench:
	QUICK=$(QUICK) bash tests/bench/run.sh

profile:
	@test -n "$(STEP)" || { echo "usage: make profile STEP=NN" >&2; exit 2; }
	bash tests/bench/profile.sh step$(STEP)

# ---- testing ---------------------------------------------------------------

unit: $(UNIT_TESTS)
	bats tests/unit

test:
	@bash tests/deps.sh check || bash tests/deps.sh install
	$(MAKE) --no-print-directory all
	$(MAKE) --no-print-directory SAN=1 all
	bash tests/run-suites.sh $(STEP_NAMES)

# Static analysis (tests/lint/README.md): cppcheck and clang-tidy with the
# build's own flags, shellcheck on every script. Any finding fails.
LINT_TOOLS := cppcheck clang-tidy shellcheck
lint:
	@bash tests/deps.sh check $(LINT_TOOLS) || bash tests/deps.sh install $(LINT_TOOLS)
	LINT_FLAGS="$(CPPFLAGS) $(ALL_CFLAGS)" bash tests/lint/run.sh

# Memory checking (tests/lint/README.md): the cases in tests/valgrind/cases
# against the plain build, each program under valgrind memcheck.
valgrind:
	@bash tests/deps.sh check valgrind || bash tests/deps.sh install valgrind
	$(MAKE) --no-print-directory SAN= all
	bash tests/valgrind/run.sh $(STEP_NAMES)

# ---- fuzzing ---------------------------------------------------------------
# libFuzzer targets for the parsing in common/ (clang; tests/fuzz/README.md),
# then the protocol fuzzer against each chapter's sanitizer build.

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_STEPS   ?= $(STEP_NAMES)
FZ           := build/fuzz
FUZZ_CFLAGS  := $(CSTD) $(WARN) -g -O1 -fno-omit-frame-pointer \
                -fsanitize=fuzzer-no-link,address,undefined \
                -fno-sanitize-recover=undefined
FUZZ_LDFLAGS := -fsanitize=fuzzer,address,undefined
FUZZ_TARGETS := line args net outq

$(FZ)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -MMD -MP -c -o $@ $<

$(FZ)/fuzz_line: $(FZ)/obj/tests/fuzz/fuzz_line.o $(FZ)/obj/common/line.o
$(FZ)/fuzz_args: $(FZ)/obj/tests/fuzz/fuzz_args.o $(FZ)/obj/common/args.o \
                 $(FZ)/obj/common/net.o $(FZ)/obj/common/log.o
$(FZ)/fuzz_net: $(FZ)/obj/tests/fuzz/fuzz_net.o $(FZ)/obj/common/net.o
# The input plays the kernel: outq.c's send() and malloc() go to the target.
$(FZ)/fuzz_outq: $(FZ)/obj/tests/fuzz/fuzz_outq.o $(FZ)/obj/common/outq.o
$(FZ)/fuzz_outq: FUZZ_WRAP := -Wl,--wrap=send,--wrap=malloc
$(addprefix $(FZ)/fuzz_,$(FUZZ_TARGETS)):
	$(FUZZ_CC) $(FUZZ_LDFLAGS) $(FUZZ_WRAP) -o $@ $^

$(FZ)/protofuzz: tests/fuzz/protofuzz.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -o $@ $<

-include $(shell find $(FZ) -name '*.d' 2>/dev/null)

fuzz-build:
	$(MAKE) --no-print-directory all
	$(MAKE) --no-print-directory SAN=1 all
	$(MAKE) --no-print-directory $(addprefix $(FZ)/fuzz_,$(FUZZ_TARGETS)) \
	    $(FZ)/protofuzz

fuzz:
	@bash tests/deps.sh check clang libfuzzer || bash tests/deps.sh install clang libfuzzer
	@$(MAKE) --no-print-directory fuzz-build
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash tests/fuzz/run.sh $(FUZZ_STEPS)
