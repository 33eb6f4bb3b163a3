# The HTTP shim, actloom-shim: built from shim/*.c and shim/handlers/*.c with
# its own flags (it is a program, not a server module), next to the PGXS
# build of the extension.  Included by the top Makefile after PGXS.
#
#   make                 also builds shim/build/actloom-shim and the unit test programs
#   make install         also installs actloom-shim into pg_config's bindir
#   make SANITIZE=1      builds them with AddressSanitizer and UBSan

SHIM_DIR = shim
SHIM_OBJDIR = shim/build$(if $(filter 1,$(SANITIZE)),-san)
SHIM_SRCS = $(sort $(wildcard shim/*.c) $(wildcard shim/handlers/*.c))
SHIM_OBJS = $(patsubst shim/%.c,$(SHIM_OBJDIR)/%.o,$(SHIM_SRCS))
SHIM_LIB_OBJS = $(filter-out $(SHIM_OBJDIR)/main.o,$(SHIM_OBJS))
SHIM_UNIT_SRCS = $(sort $(wildcard test/unit/*.c))
SHIM_UNIT_BINS = $(patsubst test/unit/%.c,$(SHIM_OBJDIR)/unit/%,$(SHIM_UNIT_SRCS))
# The binary lives beside its objects, so that switching SANITIZE relinks it.
SHIM_BIN = $(SHIM_OBJDIR)/actloom-shim

SHIM_PKGS = libh2o-evloop libpq libcurl jansson yaml-0.1 zlib
SHIM_CFLAGS = -std=gnu11 -O2 -g -Wall -Wextra -Werror -Wno-unused-parameter \
	-Wno-missing-field-initializers -DH2O_USE_LIBUV=0 -D_GNU_SOURCE -DACTLOOM_VERSION='"$(EXTVERSION)"' -Ishim \
	$(shell pkg-config --cflags $(SHIM_PKGS))
SHIM_LDLIBS = $(shell pkg-config --libs $(SHIM_PKGS)) -lssl -lcrypto -lpthread -lm
SHIM_LDFLAGS =
ifeq ($(SANITIZE),1)
SHIM_CFLAGS += -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
SHIM_LDFLAGS += -fsanitize=address,undefined
endif

all: $(SHIM_BIN) shim-unit
install: install-shim

.PHONY: shim-unit install-shim

$(SHIM_BIN): $(SHIM_OBJS)
	$(CC) $(SHIM_LDFLAGS) -o $@ $^ $(SHIM_LDLIBS)

shim-unit: $(SHIM_UNIT_BINS)

$(SHIM_OBJDIR)/%.o: shim/%.c $(wildcard shim/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(SHIM_CFLAGS) -c -o $@ $<

$(SHIM_OBJDIR)/unit/%: test/unit/%.c test/unit/unit.h $(SHIM_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(SHIM_CFLAGS) -Itest/unit $(SHIM_LDFLAGS) -o $@ $< $(SHIM_LIB_OBJS) $(SHIM_LDLIBS)

install-shim: $(SHIM_BIN)
	$(INSTALL_PROGRAM) $(SHIM_BIN) '$(DESTDIR)$(bindir)/actloom-shim'

EXTRA_CLEAN += shim/build shim/build-san
