# actloom: the PostgreSQL extension (PGXS) and the HTTP shim (shim/shim.mk).
#
#   make              build the extension
#   make install      install it into the PostgreSQL that pg_config names
#   make test         install dependencies, build, install, run every test
#                     against a throwaway cluster, print "N passed, M failed"
#   make run          build, install, start a local cluster with a demo
#   make stop         stop the local cluster that "make run" started
#   make bench        run the benchmarks in test/bench/ (ONLY=area for one)
#   make SANITIZE=1   build with UBSan (the extension) and ASan+UBSan (the
#                     programs that are not loaded into the server)

PG_CONFIG ?= $(firstword $(wildcard /usr/lib/postgresql/15/bin/pg_config) pg_config)

# PGROOT=DIR builds, installs and tests against a private copy of the system's
# PostgreSQL 15 in DIR (made by "make deps"), so that several checkouts can
# be tested side by side without installing into the system.
ifdef PGROOT
override PGROOT := $(abspath $(PGROOT))
PG_CONFIG := $(PGROOT)/usr/lib/postgresql/15/bin/pg_config
endif

# Every Debian (bookworm) package the project needs, in one place.  "make deps"
# installs what is missing when run as root, and names it otherwise.
DEBIAN_PACKAGES = make gcc libc6-dev postgresql-15 postgresql-contrib \
	postgresql-server-dev-15 postgresql-client-15 libipc-run-perl \
	libssl-dev openssl bc libargon2-dev libh2o-evloop-dev libcurl4-openssl-dev \
	libjansson-dev libyaml-dev libpq-dev zlib1g-dev pkg-config wrk curl git \
	libio-socket-ssl-perl libhttp-cookiejar-perl

EXTENSION = actloom
MODULE_big = actloom
OBJS = $(patsubst %.c,%.o,$(sort $(wildcard extension/*.c)))
# The install script is assembled from one file a concept, in name order.
# Each upgrade script actloom--X--Y.sql is assembled from
# extension/upgrade/X--Y.sql, whose lines "\ir FILE" are replaced by FILE
# (relative to extension/upgrade/): a fragment of extension/sql/ that is new
# in Y is written once and reaches fresh installs and upgrades alike.  When Y
# is released, its upgrade source is frozen: replaced by the assembled script,
# so that later changes to the fragments cannot reach it.
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" actloom.control)
UPGRADE_SCRIPTS = $(patsubst extension/upgrade/%.sql,extension/actloom--%.sql,\
	$(sort $(wildcard extension/upgrade/*--*.sql)))
DATA_built = extension/actloom--$(EXTVERSION).sql $(UPGRADE_SCRIPTS)
EXTRA_CLEAN = $(DATA_built) extension/build.flags
REGRESS = setup roles memberships tenancy context errors audit seal apikeys passwords endpoints sessions people ratelimit partitions webhooks comments
REGRESS_OPTS = --inputdir=. --outputdir=.
NO_INSTALLCHECK_TAP = 1

SHLIB_LINK = -lcrypto -largon2
PG_CPPFLAGS = -I$(srcdir)/extension
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers

ifeq ($(SANITIZE),1)
# ASan cannot be loaded into a server that was not started with it; UBSan can.
PG_CFLAGS += -fsanitize=undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
SHLIB_LINK += -lubsan
endif

PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifeq ($(PGXS),)
# Without the server headers there is nothing to build yet: "make deps" first.
all install installcheck:
	@$(MAKE) --no-print-directory deps && $(MAKE) --no-print-directory $@
else
# No JIT bitcode: it would need clang at build time for no measurable gain.
override with_llvm = no
include $(PGXS)
include shim/shim.mk
endif

# PGXS knows nothing of our header, nor of the flags an object was built
# with: every object depends on both, so that switching SANITIZE rebuilds.
$(OBJS): extension/actloom.h extension/build.flags

extension/build.flags: FORCE
	@echo '$(PG_CFLAGS) $(SHLIB_LINK)' | cmp -s - $@ || echo '$(PG_CFLAGS) $(SHLIB_LINK)' > $@

extension/actloom--$(EXTVERSION).sql: $(sort $(wildcard extension/sql/*.sql)) actloom.control
	cat $(sort $(wildcard extension/sql/*.sql)) > $@

$(UPGRADE_SCRIPTS): extension/actloom--%.sql: extension/upgrade/%.sql $(wildcard extension/sql/*.sql)
	awk '/^\\ir / { f = "extension/upgrade/" $$2; n = 0; \
		while ((r = (getline line < f)) > 0) { print line; n++ } \
		if (r < 0 || n == 0) { print FILENAME ": cannot include " f > "/dev/stderr"; exit 1 } \
		close(f); next } { print }' $< > $@.tmp && mv $@.tmp $@

.PHONY: deps test run stop bench FORCE

deps:
	@DEBIAN_PACKAGES="$(DEBIAN_PACKAGES)" PGROOT="$(PGROOT)" sh test/deps.sh

test: deps
	$(MAKE) PG_CONFIG=$(PG_CONFIG) all
	$(MAKE) PG_CONFIG=$(PG_CONFIG) install
	PG_CONFIG=$(PG_CONFIG) SANITIZE=$(SANITIZE) bash test/run-tests.sh

run: deps
	$(MAKE) PG_CONFIG=$(PG_CONFIG) all
	$(MAKE) PG_CONFIG=$(PG_CONFIG) install
	PG_CONFIG=$(PG_CONFIG) bash test/run-demo.sh start

bench: deps
	$(MAKE) PG_CONFIG=$(PG_CONFIG) all
	$(MAKE) PG_CONFIG=$(PG_CONFIG) install
	PG_CONFIG=$(PG_CONFIG) ONLY=$(ONLY) bash test/run-bench.sh

stop:
	PG_CONFIG=$(PG_CONFIG) bash test/run-demo.sh stop
