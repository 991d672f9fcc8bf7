# loft — GNU make build.
#
#   make              build/loftd and build/loftadm
#   make check        the layering check, the ring's protocol model (spin),
#                     unit tests (normal and ASan+UBSan), integration tests
#                     under ASan+UBSan, bench-quick, and every fuzz harness:
#                     the README's ./scripts/test
#   make check-unit   unit tests only (BUILD=build-san SAN=1 for sanitizers)
#   make check-model  the director ring's protocol models, checked by spin
#                     (tests/model/check.sh, check-failsafe.sh; MODEL_ARGS: -v, -a)
#   make check-integration  the integration tests against this BUILD, in
#                     PYTEST_JOBS (default 2) pytest-xdist workers; with test
#                     files in PYTEST_ARGS, only those
#   make san          the sanitizer build in build-san/
#   make doc          the man pages (scdoc) in build/doc/
#   make install      both programs, their man pages, etc/loft.conf (unless
#                     one is there) and the systemd unit, under PREFIX
#                     (default /usr/local) and DESTDIR; make uninstall
#   make deb          the Debian package (dpkg-buildpackage, debian/) from a
#                     copy of the sources in build/deb/, checked by lintian
#   make bench        loft side by side with its peers -> docs/BENCHMARKS.md
#   make bench-tls    only its TLS logins part (issue 17), about 7 minutes
#   make bench-lmtp   LMTP deliveries: loft, Dovecot's LMTP proxy and direct
#                     (issue 17), about 3 minutes; not in make bench (time)
#   make bench-quick  the same harness, loft and direct, a few seconds
#   make bench-registry  kick 100k of 200k synthetic sessions, timed
#   make bench-director  route logins over 1M assignments, and their memory
#   make bench-passwd-reload  the loop's stalls during a 50 MB passwd-file
#                     reload (BENCH_ARGS: e.g. --ip 127.0.0.1 --size-mb 50)
#   make bench-auth   a login flood from clients that give up, beside a
#                     well-behaved client (BENCH_ARGS: e.g. --net 127.0.0)
#   make bench-etcd   the etcd client's latencies against 3 local members
#   make bench-ring   a 3-node ring on a local etcd against a lone loftd: CPU
#                     per login, etcd requests per login, host changes,
#                     moves, a node joining N pins (on $LOFT_TEST_NET if set;
#                     BENCH_ARGS: e.g. --million)
#   make bench-ring-sessions  issue 14's scale figure: ring-wide loftadm who,
#                     who -1, proxy list and kicks of 100k over 200k synthetic
#                     sessions on 3 ring nodes, timed from node 1; builds
#                     BENCH_BUILD (default build-bench) with BENCH_HOOKS=1,
#                     whose loftd alone has BENCH-FAKE-SESSIONS
#                     (src/admin/cmd_bench.c), and checks that BUILD's has
#                     not (BENCH_ARGS: e.g. --session-rounds 9 --net 127.a.b)
#   make bench-tail   where a slow login's time goes inside loftd (issue 17):
#                     builds BENCH_BUILD with BENCH_HOOKS=1, whose loftd
#                     records every login's timeline and loop turn
#                     (src/common/bench_trace.h), and runs bench/tail.py
#                     (BENCH_ARGS: e.g. --build build-bench,<before>)
#   make fuzz         every libFuzzer harness for FUZZ_SECONDS (default 60)
#                     each, with clang-14, in build-fuzz/; make check runs
#                     them for CHECK_FUZZ_SECONDS (default 5)
#
# Variables: BUILD (output dir), SAN=1 (ASan+UBSan), BENCH_HOOKS=1 (the
# bench-only admin commands, in a build dir of their own), FUZZ=1 (libFuzzer
# instrumentation, with CC=clang-14), CC, CFLAGS, CPPFLAGS, LDFLAGS, PYTEST,
# PYTEST_ARGS, PYTEST_JOBS, PYTHON (Debian's, for bench/compare.py),
# CHECK_FUZZ_SECONDS, MODEL_ARGS; for install: PREFIX, DESTDIR, BINDIR, SBINDIR, MANDIR,
# SYSCONFDIR, UNITDIR.

BUILD ?= build
CC ?= cc
PKG_CONFIG ?= pkg-config
PYTEST ?= pytest-3
PYTHON ?= /usr/bin/python3
PYTEST_ARGS ?=
BENCH_ARGS ?=
BENCH_BUILD ?= build-bench
# the integration tests wait on sockets far more than they compute: two
# workers, each with its own backends and loopback net, halve the time
PYTEST_JOBS ?= 2
NPROC := $(shell nproc 2>/dev/null || echo 1)

PKGS := libevent_core libevent_pthreads libevent_extra libevent_openssl openssl \
	libconfig libsodium libxcrypt libxxhash jansson ldap libpq sqlite3
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS))
PKG_LIBS := $(shell $(PKG_CONFIG) --libs $(PKGS))
CMOCKA_LIBS := $(shell $(PKG_CONFIG) --libs cmocka)

WARNINGS := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wformat=2 -Wno-format-nonliteral \
	-Wpointer-arith -Wcast-qual -Wvla -Wundef
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=gnu11 $(WARNINGS) $(CPPFLAGS) $(CFLAGS) -Isrc -D_GNU_SOURCE \
	-DOPENSSL_API_COMPAT=30000 -DOPENSSL_NO_DEPRECATED $(PKG_CFLAGS) -MMD -MP
LDLIBS := $(PKG_LIBS) -lpthread

ifeq ($(SAN),1)
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer
ALL_CFLAGS += $(SAN_FLAGS) -O1 -DLOFT_SANITIZER
LDFLAGS += $(SAN_FLAGS)
endif

# the bench hooks (src/admin/cmd_bench.c): only in a build of their own,
# e.g. make BUILD=build-bench BENCH_HOOKS=1; a normal loftd has none
ifeq ($(BENCH_HOOKS),1)
ALL_CFLAGS += -DLOFT_BENCH_HOOKS
endif

ifeq ($(FUZZ),1)
FUZZ_FLAGS := -fsanitize=fuzzer-no-link,address,undefined \
	-fno-sanitize-recover=all -fno-omit-frame-pointer
ALL_CFLAGS += $(FUZZ_FLAGS) -O1
LDFLAGS += -fsanitize=address,undefined
endif

# Every library module; daemon/ and cli/ hold the two programs.
LIB_DIRS := common conf core proto auth director registry proxy admin ring metrics
LIB_SRCS := $(foreach d,$(LIB_DIRS),$(wildcard src/$(d)/*.c))
DAEMON_SRCS := $(wildcard src/daemon/*.c)
CLI_MAIN := src/cli/main.c
CLI_LIB_SRCS := $(filter-out $(CLI_MAIN),$(wildcard src/cli/*.c))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)

LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
DAEMON_OBJS := $(DAEMON_SRCS:%.c=$(BUILD)/%.o)
CLI_MAIN_OBJ := $(CLI_MAIN:%.c=$(BUILD)/%.o)
CLI_LIB_OBJS := $(CLI_LIB_SRCS:%.c=$(BUILD)/%.o)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)

.SECONDARY:
MAN_SRCS := $(wildcard doc/*.scd)
MAN_PAGES := $(MAN_SRCS:doc/%.scd=$(BUILD)/doc/%)

.PHONY: all check check-unit check-integration check-layers check-model check-san san \
	install uninstall deb \
	check-san-integration-and-builds check-san-integration builds-niced \
	unit doc clean bench bench-tls bench-lmtp bench-quick bench-registry bench-director \
	bench-tools bench-passwd-reload bench-auth bench-etcd bench-ring bench-ring-sessions bench-tail \
	fuzz fuzzers
all: $(BUILD)/loftd $(BUILD)/loftadm

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/libloft.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/loftd: $(DAEMON_OBJS) $(BUILD)/libloft.a
	$(CC) $(LDFLAGS) -o $@ $(DAEMON_OBJS) $(BUILD)/libloft.a $(LDLIBS)

$(BUILD)/libloftcli.a: $(CLI_LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/loftadm: $(CLI_MAIN_OBJ) $(BUILD)/libloftcli.a $(BUILD)/libloft.a
	$(CC) $(LDFLAGS) -o $@ $(CLI_MAIN_OBJ) $(BUILD)/libloftcli.a $(BUILD)/libloft.a $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(BUILD)/libloftcli.a $(BUILD)/libloft.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(filter $(BUILD)/src/daemon/%.o,$^) \
		$(BUILD)/libloftcli.a $(BUILD)/libloft.a $(LDLIBS) $(CMOCKA_LIBS)

# the daemon's files are in no library: their tests name what they link
$(BUILD)/tests/test_daemon_notify: $(BUILD)/src/daemon/notify.o

unit: $(UNIT_BINS)

# the etcd client's test driver (tests/integration/test_etcd_client.py)
ETCD_DRIVE := $(BUILD)/tests/ring/etcd_drive
$(ETCD_DRIVE): $(BUILD)/tests/ring/etcd_drive.o $(BUILD)/libloft.a
	$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/libloft.a $(LDLIBS) -lm

$(BUILD)/fuzz/%: $(BUILD)/tests/fuzz/%.o $(BUILD)/libloft.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $< $(BUILD)/libloft.a $(LDLIBS)

fuzzers: $(FUZZ_BINS)

# each harness for FUZZ_SECONDS, from the seeds in tests/fuzz/corpus/,
# one per CPU at a time
FUZZ_SECONDS ?= 60
CHECK_FUZZ_SECONDS ?= 5
fuzz:
	$(MAKE) -j$(NPROC) BUILD=build-fuzz FUZZ=1 CC=clang-14 fuzzers
	sh tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS) $(NPROC)

doc: $(MAN_PAGES)

# Where make install puts things. loftd reads /etc/loft/loft.conf unless
# told otherwise (-c), so the configuration goes there whatever PREFIX is;
# systemd also looks for units in /usr/local/lib/systemd/system.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
UNITDIR ?= $(PREFIX)/lib/systemd/system
INSTALL ?= install
# a man page's directory: build/doc/loftd.8 -> $(MANDIR)/man8
MAN_DIR = $(DESTDIR)$(MANDIR)/man$(subst .,,$(suffix $(1)))

# An existing loft.conf is the operator's: it is kept, and the sample is
# not put beside it.
install: all doc
	$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) \
		$(DESTDIR)$(SYSCONFDIR)/loft $(DESTDIR)$(UNITDIR) \
		$(sort $(foreach p,$(MAN_PAGES),$(call MAN_DIR,$(p))))
	$(INSTALL) -m 755 $(BUILD)/loftd $(DESTDIR)$(SBINDIR)/loftd
	$(INSTALL) -m 755 $(BUILD)/loftadm $(DESTDIR)$(BINDIR)/loftadm
	$(foreach p,$(MAN_PAGES),$(INSTALL) -m 644 $(p) $(call MAN_DIR,$(p)) &&) true
	sed -e 's|/usr/sbin/loftd|$(SBINDIR)/loftd|' \
		-e 's|/etc/loft/loft.conf|$(SYSCONFDIR)/loft/loft.conf|' \
		etc/loft.service > $(DESTDIR)$(UNITDIR)/loft.service.tmp
	mv $(DESTDIR)$(UNITDIR)/loft.service.tmp $(DESTDIR)$(UNITDIR)/loft.service
	chmod 644 $(DESTDIR)$(UNITDIR)/loft.service
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/loft/loft.conf ]; then \
		echo "kept $(DESTDIR)$(SYSCONFDIR)/loft/loft.conf (the sample is etc/loft.conf)"; \
	else \
		echo "$(INSTALL) -m 644 etc/loft.conf $(DESTDIR)$(SYSCONFDIR)/loft/loft.conf"; \
		$(INSTALL) -m 644 etc/loft.conf $(DESTDIR)$(SYSCONFDIR)/loft/loft.conf; \
	fi

# everything install put there but the configuration
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/loftd $(DESTDIR)$(BINDIR)/loftadm \
		$(DESTDIR)$(UNITDIR)/loft.service \
		$(foreach p,$(MAN_PAGES),$(call MAN_DIR,$(p))/$(notdir $(p)))

# The package is built from a copy of what it needs, in build/deb/ (not
# the default of dpkg-buildpackage, the checkout's parent directory), by
# a make of its own: this make's variables (BUILD, SAN) stay out of it.
DEB_VERSION = $(shell dpkg-parsechangelog -S Version)
DEB_SRC = build/deb/loft-$(DEB_VERSION)
deb:
	rm -rf build/deb
	mkdir -p $(DEB_SRC)
	tar -cf - Makefile README.md src doc etc debian | tar -xf - -C $(DEB_SRC)
	cd $(DEB_SRC) && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
		DEB_BUILD_OPTIONS="parallel=$(NPROC) $(DEB_BUILD_OPTIONS)" \
		dpkg-buildpackage -b --no-sign
	lintian --fail-on error,warning,info --display-info build/deb/loft_$(DEB_VERSION)_*.changes
	@ls build/deb/*.deb

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(BUILD)/libloft.a
	$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/libloft.a $(LDLIBS)

# the comparison's own load generator and IMAP backend
BENCH_TOOLS := $(BUILD)/bench/loadgen $(BUILD)/bench/backend
$(BENCH_TOOLS): %: %.o $(BUILD)/bench/bench_net.o $(BUILD)/libloft.a
	$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/bench/bench_net.o $(BUILD)/libloft.a $(LDLIBS) -lm

bench-tools: $(BENCH_TOOLS)

# the side-by-side comparison (as root); writes docs/BENCHMARKS.md
bench: all $(BENCH_TOOLS)
	sh scripts/deps.sh bench
	$(PYTHON) bench/compare.py --build $(abspath $(BUILD))

# only its TLS part, which replaces only its own section
bench-tls: all $(BENCH_TOOLS)
	sh scripts/deps.sh bench
	$(PYTHON) bench/compare.py --tls-only --build $(abspath $(BUILD))

# the LMTP comparison, its own section; not part of make bench, which
# would then take more than 15 minutes
bench-lmtp: all $(BENCH_TOOLS)
	sh scripts/deps.sh bench
	$(PYTHON) bench/compare.py --lmtp-only --build $(abspath $(BUILD))

# the same harness, small and short: proves it works, asserts no speed
bench-quick: all $(BENCH_TOOLS)
	$(PYTHON) bench/compare.py --quick --build $(abspath $(BUILD))

bench-registry: $(BUILD)/bench/registry_kick
	$(BUILD)/bench/registry_kick 200000

bench-director: $(BUILD)/bench/director_route
	$(BUILD)/bench/director_route 1000000 10

# a flood of logins that give up before their expensive hash is verified,
# beside a client that logs in properly (as root)
bench-auth: all $(BUILD)/bench/backend
	$(PYTHON) bench/auth_flood.py --build $(abspath $(BUILD)) $(BENCH_ARGS)

# the loop's stalls while a 50 MB passwd-file is reloaded (as root)
bench-passwd-reload: all
	$(PYTHON) bench/passwd_reload_lag.py --build $(abspath $(BUILD)) $(BENCH_ARGS)

# 3 etcd members on $(LOFT_TEST_NET).51-53, as root
bench-etcd: $(ETCD_DRIVE)
	LOFT_BUILD=$(abspath $(BUILD)) $(PYTHON) bench/etcd_latency.py

# the director ring's costs against issue 13's goals, on a private 3-member
# etcd (as root); the figures go into docs/BENCHMARKS.md by hand
bench-ring: all $(BENCH_TOOLS)
	$(PYTHON) bench/ring.py --build $(abspath $(BUILD)) $(BENCH_ARGS)

# issue 14's scale figure, in a build with the bench hooks (as root)
bench-ring-sessions: all
	$(MAKE) BUILD=$(BENCH_BUILD) BENCH_HOOKS=1 all bench-tools
	$(PYTHON) bench/ring.py --build $(abspath $(BENCH_BUILD)) \
		--normal-build $(abspath $(BUILD)) --figures sessions $(BENCH_ARGS)

bench-tail:
	$(MAKE) BUILD=$(BENCH_BUILD) BENCH_HOOKS=1 all bench-tools
	$(PYTHON) bench/tail.py --build $(abspath $(BENCH_BUILD)) $(BENCH_ARGS)

$(BUILD)/doc/%: doc/%.scd
	@mkdir -p $(dir $@)
	scdoc < $< > $@

check-unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do \
		echo "== $$t"; \
		(cd tests/unit && ../../$$t); \
	done

check-layers:
	@sh tests/check_layers.sh

# the ring's protocol in Promela (doc/ring.md §11), and the planned failsafe
# mode's (§13): about three minutes on 2 cores
MODEL_ARGS ?=
check-model:
	@sh tests/model/check.sh $(MODEL_ARGS)
	@sh tests/model/check-failsafe.sh $(MODEL_ARGS)

# -n only where pytest-xdist is installed (scripts/deps.sh installs it)
XDIST = $(shell $(PYTHON) -c 'import xdist' 2>/dev/null && echo yes)
PYTEST_N = $(if $(and $(XDIST),$(filter-out 0 1,$(PYTEST_JOBS))),-n $(PYTEST_JOBS))
INTEGRATION_TESTS := $(if $(filter tests/%,$(PYTEST_ARGS)),,tests/integration)

check-integration: all $(ETCD_DRIVE)
	LOFT_BUILD=$(abspath $(BUILD)) $(PYTEST) -q $(PYTEST_N) $(INTEGRATION_TESTS) $(PYTEST_ARGS)

san:
	$(MAKE) BUILD=build-san SAN=1 all unit

# unit tests and the integration tests under ASan+UBSan
check-san:
	$(MAKE) -j$(NPROC) BUILD=build-san SAN=1 all unit
	$(MAKE) BUILD=build-san SAN=1 check-unit check-integration

# Each program is built once per build and each suite run once: the
# integration tests only under ASan+UBSan (the stricter build, with a leak
# check at every loftd exit), bench-quick only with the normal build. The
# normal and fuzzing builds run beside the integration tests
# (check-san-integration-and-builds).
check: check-layers check-model
	$(MAKE) -j$(NPROC) BUILD=build-san SAN=1 all unit
	$(MAKE) BUILD=build-san SAN=1 check-unit
	$(MAKE) -j2 check-san-integration-and-builds
	$(MAKE) check-unit
	$(MAKE) bench-quick
	$(MAKE) fuzz FUZZ_SECONDS=$(CHECK_FUZZ_SECONDS)

# The integration tests under ASan+UBSan and, at the lowest priority beside
# them, the other two builds: the tests mostly wait on sockets, the builds
# take the CPU they leave idle. (Their output goes to <build>/make.log.)
check-san-integration-and-builds: check-san-integration builds-niced
check-san-integration:
	$(MAKE) BUILD=build-san SAN=1 check-integration
builds-niced:
	@mkdir -p $(BUILD) build-fuzz
	@nice -n 19 $(MAKE) -j$(NPROC) all unit bench-tools >$(BUILD)/make.log 2>&1 || \
		{ cat $(BUILD)/make.log; exit 1; }
	@nice -n 19 $(MAKE) -j$(NPROC) BUILD=build-fuzz FUZZ=1 CC=clang-14 fuzzers \
		>build-fuzz/make.log 2>&1 || { cat build-fuzz/make.log; exit 1; }

clean:
	rm -rf build build-san build-fuzz

-include $(LIB_OBJS:.o=.d) $(DAEMON_OBJS:.o=.d) $(CLI_MAIN_OBJ:.o=.d) \
	$(CLI_LIB_OBJS:.o=.d) $(ETCD_DRIVE).d \
	$(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/unit/%.d) \
	$(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/tests/fuzz/%.d)
