# SPDX-License-Identifier: GPL-2.0
#
# gntsock: AF_GNTSOCK sockets between Xen domains.
#
#   make            the module (gntsock.ko), tools and test programs
#   make check      the whole test suite: build warnings, checkpatch, sparse,
#                   unit tests, fuzzing, then the real-Xen VM suite; ends with
#                   "N passed, N failed" and fails if anything failed
#   make demo       boot Xen + dom0 + two domUs and send a file domU1 -> domU2
#   make bench      gntsock vs TCP vs libxenvchan vs memcpy between two domUs,
#                   one boot (BOOTS=N: N boots and a table of their medians);
#                   the table goes to build/bench/table.txt
#   make lint       W=1 build, sparse (C=2) and checkpatch --strict only
#
# The module is built against the headers of the kernel the VM rig boots
# (Debian's current linux-image-amd64); KDIR= overrides.

KVER	?= $(shell selftests/rig/kver.sh 2>/dev/null)
KDIR	?= /usr/src/linux-headers-$(KVER)

all: module tools selftests

module:
	$(MAKE) -C $(KDIR) M=$(CURDIR) W=1 modules
	$(MAKE) -C $(KDIR) M=$(CURDIR)/selftests/xrt W=1 modules
	$(MAKE) -C $(KDIR) M=$(CURDIR)/selftests/hostile W=1 modules
	mkdir -p build/bin
	cp selftests/xrt/gntsock_xrt.ko selftests/hostile/gntsock_hostile.ko build/bin/

tools:
	$(MAKE) -C tools

selftests:
	$(MAKE) -C selftests
	$(MAKE) -C selftests/unit

check:
	selftests/check.sh

demo:
	selftests/demo.sh

BOOTS	?= 1

bench:
	BOOTS=$(BOOTS) selftests/bench.sh

lint:
	selftests/lint.sh

PREFIX	?= /usr/local

install: module tools
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules_install
	install -D -m 755 -t $(DESTDIR)$(PREFIX)/bin build/bin/gntcat \
		build/bin/gntsock-link build/bin/gntsock-perf
	install -D -m 644 tools/gntcat.1 $(DESTDIR)$(PREFIX)/share/man/man1/gntcat.1

clean:
	-$(MAKE) -C $(KDIR) M=$(CURDIR) clean
	-$(MAKE) -C $(KDIR) M=$(CURDIR)/selftests/xrt clean
	-$(MAKE) -C $(KDIR) M=$(CURDIR)/selftests/hostile clean
	rm -rf build

.PHONY: all module tools selftests check demo bench lint install clean
