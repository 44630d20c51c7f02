# SPDX-License-Identifier: MIT
# whale build. `make help` lists the targets.

CC      ?= cc
BUILD   ?= build
OPT     ?= -O2
CFLAGS  ?=
WARN    := -std=c11 -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
ifeq ($(WERROR),1)
WARN    += -Werror
endif
ALLCFLAGS = $(WARN) $(OPT) -g -fopenmp -D_GNU_SOURCE -Isrc $(SANITIZE) $(CFLAGS) -MMD -MP
LDLIBS  := -fopenmp -ljansson -lpcre2-8 -lutf8proc -lm -lmicrohttpd -lpthread

# OpenMPI (multi-process training, train/comm_mpi.c) when pkg-config finds it;
# without it the same commands run single-process. MPI=0 builds without.
MPI ?= $(shell pkg-config --exists ompi-c 2>/dev/null && echo 1)
ifeq ($(MPI),1)
MPI_CFLAGS := -DWHALE_MPI $(shell pkg-config --cflags ompi-c)
LDLIBS  += $(shell pkg-config --libs ompi-c)
endif

LIB_SRC := $(sort $(wildcard src/base/*.c src/kernels/*.c src/io/*.c src/tokenizer/*.c \
             src/model/*.c src/infer/*.c src/train/*.c src/rl/*.c src/serve/*.c))
CLI_SRC := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/obj/%.o)

WHALE := $(BUILD)/whale
TESTS := $(BUILD)/test_whale

.PHONY: all help test test-slow asan ubsan sanitize fuzz bench run clean deps

all: $(WHALE)

help:
	@echo "make            build $(WHALE)"
	@echo "make test       build and run the test suite (a few minutes on 2 cores)"
	@echo "make test-slow  also run the slow tests (WHALE_SLOW=1)"
	@echo "make asan       run the test suite under AddressSanitizer + UBSan (build-asan/)"
	@echo "make ubsan      run the test suite under UndefinedBehaviorSanitizer only (build-ubsan/)"
	@echo "make fuzz       build libFuzzer targets into build-fuzz/ (clang) and run each 30 s"
	@echo "make bench      run the benchmarks and append to bench/RESULTS.md"
	@echo "make run        install missing packages, build, and run the demo"
	@echo "make deps       install missing Debian packages (scripts/deps.sh)"
	@echo "make clean      remove build outputs"

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) -c $< -o $@

# page.c embeds the web page with .incbin, which the compiler's -MMD does not see.
$(BUILD)/obj/src/serve/page.o: src/serve/page.html

# comm_mpi.o is rebuilt when MPI appears or goes (scripts/deps.sh installs it
# after a first build): the flags it was built with are kept in a stamp.
$(BUILD)/mpi-flags: FORCE
	@mkdir -p $(BUILD)
	@echo '$(MPI_CFLAGS)' | cmp -s - $@ || echo '$(MPI_CFLAGS)' > $@
$(BUILD)/obj/src/train/comm_mpi.o: ALLCFLAGS += $(MPI_CFLAGS)
$(BUILD)/obj/src/train/comm_mpi.o: $(BUILD)/mpi-flags
.PHONY: FORCE

$(BUILD)/libwhale.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(WHALE): $(CLI_OBJ) $(BUILD)/libwhale.a
	$(CC) $(ALLCFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libwhale.a $(LDLIBS)

$(TESTS): $(TEST_OBJ) $(BUILD)/libwhale.a
	$(CC) $(ALLCFLAGS) -o $@ $(TEST_OBJ) $(BUILD)/libwhale.a $(LDLIBS) -lcriterion

# Tests find the binary and the fixtures through the environment.
TEST_ENV = WHALE_BIN=$(abspath $(WHALE)) WHALE_DATA=$(abspath tests/data) WHALE_QUIET=1
CRITERION_FLAGS ?= --jobs 2

# `make test` on a fresh machine installs what is missing first (silent
# when everything is there).
test: deps
	$(MAKE) $(WHALE) $(TESTS)
	$(TEST_ENV) $(TESTS) $(CRITERION_FLAGS)

test-slow: $(WHALE) $(TESTS)
	$(TEST_ENV) WHALE_SLOW=1 $(TESTS) $(CRITERION_FLAGS)

SAN_FLAGS = -fno-omit-frame-pointer -fno-sanitize-recover=all
asan:
	$(MAKE) BUILD=build-asan OPT=-O1 SANITIZE="-fsanitize=address,undefined $(SAN_FLAGS)" test \
	  TEST_ENV="$(TEST_ENV) ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp) WHALE_BIN=$(abspath build-asan/whale)"

ubsan:
	$(MAKE) BUILD=build-ubsan OPT=-O1 SANITIZE="-fsanitize=undefined $(SAN_FLAGS)" test \
	  TEST_ENV="$(TEST_ENV) WHALE_BIN=$(abspath build-ubsan/whale)"

# libFuzzer needs clang; one target per parser in tests/fuzz/.
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_LIB_SRC := $(filter src/base/% src/io/% src/tokenizer/%,$(LIB_SRC))
# the parts of rl that read model output (they need only base)
FUZZ_LIB_SRC += $(filter src/rl/reward.c src/rl/task%.c src/rl/countdown_expr.c src/rl/template.c,$(LIB_SRC))
# whale serve's request schema (it needs only base)
FUZZ_LIB_SRC += src/serve/api.c
FUZZ_SECONDS ?= 30
fuzz:
	@mkdir -p build-fuzz
	@for f in $(FUZZ_SRC); do \
	  t=build-fuzz/$$(basename $$f .c); \
	  echo "clang $$f -> $$t"; \
	  clang -std=c11 -g -O1 -D_GNU_SOURCE -Isrc -fsanitize=fuzzer,address,undefined \
	    $$f $(FUZZ_LIB_SRC) -ljansson -lpcre2-8 -lutf8proc -lm -o $$t || exit 1; \
	  mkdir -p build-fuzz/corpus-$$(basename $$f .c); \
	  $$t -max_total_time=$(FUZZ_SECONDS) build-fuzz/corpus-$$(basename $$f .c) || exit 1; \
	done

bench: $(WHALE)
	bash bench/run.sh
	bash bench/train.sh
	bash bench/mpi.sh
	bash bench/serve.sh

deps:
	bash scripts/deps.sh

run: deps
	$(MAKE) $(WHALE)
	bash scripts/demo.sh

clean:
	rm -rf build build-asan build-ubsan build-fuzz

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d)
