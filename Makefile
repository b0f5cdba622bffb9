# queue_ext: PGXS build. The version is written once, in queue_ext.control.
EXTENSION  = queue_ext
EXTVERSION = $(shell sed -n "s/^default_version *= *'\(.*\)'/\1/p" queue_ext.control)

MODULE_big = queue_ext
OBJS       = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))
DATA       = $(sort $(wildcard sql/queue_ext--*.sql))

PG_CPPFLAGS = -I$(srcdir)/src $(shell pkg-config --cflags libsodium)
PG_CFLAGS   = -Wall -Wextra -Wno-unused-parameter -Werror
SHLIB_LINK  = $(shell pkg-config --libs libsodium)

# Tests: test/sql/*.sql with outputs in ./expected (HypoPG layout), and
# isolation specs in test/specs with outputs in test/expected.
REGRESS        = $(basename $(notdir $(sort $(wildcard test/sql/*.sql))))
REGRESS_OPTS   = --inputdir=test --load-extension=queue_ext
ISOLATION      = $(basename $(notdir $(sort $(wildcard test/specs/*.spec))))
ISOLATION_OPTS = --inputdir=test --load-extension=queue_ext

EXTRA_CLEAN = results output_iso regression.diffs regression.out

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# The extension needs PostgreSQL 15 or later (InitMaterializedSRF, SPI options).
ifeq ($(shell test $(VERSION_NUM) -lt 150000 && echo old),old)
$(error queue_ext needs PostgreSQL 15 or later, found $(VERSION))
endif

# Every source file includes the one shared header.
$(OBJS): src/queue_ext.h
