# relay — a syslog relay with a disk queue per output.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -X main.version=$(VERSION) -X main.revision=$(REVISION)
CONFIG  ?= config.toml.example

.PHONY: build run test test-short fuzz bench syslog-ng vet cross fmt clean install uninstall

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/relay ./cmd/relay

# Start the relay on the example configuration: UDP and TCP on
# 127.0.0.1:5514, a file output at ./data/messages.log, metrics on
# http://127.0.0.1:9514/metrics. Stop it with Ctrl-C.
run: build
	./bin/relay -config $(CONFIG)

# The whole suite: vet, unit, integration and interop tests (with -race),
# then a short fuzz run of each fuzz target. The fuzz stage runs even when
# a test failed, so one run reports both; make test fails if either did.
# The fuzz budget is a count of executions, not a duration: with a
# duration, Go's fuzzing coordinator can report its own deadline as a
# failure ("context deadline exceeded", no crasher written) when a loaded
# machine starves the workers at the end. The test timeout is per package
# binary and generous: on two busy cores the relay package alone can take
# more than ten minutes.
TEST_FUZZTIME ?= 700000x
test: vet cross
	@status=0; \
	echo '$(GO) test -race -count=1 -timeout 60m ./...'; \
	$(GO) test -race -count=1 -timeout 60m ./... || status=1; \
	$(call fuzz_all,$(TEST_FUZZTIME)) || status=1; \
	exit $$status

# Unit tests only; skips the slower integration and interop tests.
test-short:
	$(GO) test -short -count=1 ./...

# FUZZTIME is a duration (30s) or a count of executions (1000000x). Every
# target runs even when an earlier one failed; fuzz fails if any did.
FUZZTIME ?= 2000000x
FUZZ_TARGETS := \
	internal/syslog:FuzzFrameReader \
	internal/syslog:FuzzReadPRI \
	internal/syslog:FuzzParse \
	internal/syslog:FuzzFormat \
	internal/syslog:FuzzParse5424Oracle \
	queue:FuzzDecodeRecord \
	internal/relp:FuzzFrame \
	outputs:FuzzJSON
fuzz:
	@$(call fuzz_all,$(FUZZTIME))

# fuzz_all runs each of FUZZ_TARGETS for $(1) in a subshell that fails if
# any target failed.
fuzz_all = ( status=0; \
	for target in $(FUZZ_TARGETS); do \
		pkg=$${target%%:*}; name=$${target\#*:}; \
		echo "$(GO) test -run='^\$$' -fuzz='^$$name\$$' -fuzztime=$(1) ./$$pkg/"; \
		$(GO) test -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(1) ./$$pkg/ || status=1; \
	done; \
	exit $$status )

# Go micro-benchmarks (allocations included), then the end-to-end harness:
# the relay against rsyslog (Disk and disk-assisted queues, when rsyslogd is
# installed) and syslog-ng (reliable disk buffer and memory queue, when
# found in SYSLOG_NG: make syslog-ng) in every scenario, with loggen's
# fixed-rate loads, tables on stdout ending with every target of issues 8
# and 18 (met, missed, unproven or not measured) and JSON under
# bench-results/. Longer runs and single scenarios: go run ./cmd/relay-bench
# -h, and docs/benchmarks.md.
BENCHTIME ?= 1s
BENCHFLAGS ?=
SYSLOG_NG ?= $(or $(RELAY_BENCH_SYSLOG_NG),$(CURDIR)/.cache/syslog-ng)
bench: build
	$(GO) test -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) ./...
	$(GO) run ./cmd/relay-bench -relay bin/relay $(if $(wildcard $(SYSLOG_NG)/usr/bin/loggen),-syslog-ng $(SYSLOG_NG)) $(BENCHFLAGS)

# syslog-ng and loggen unpacked into SYSLOG_NG, not installed: Debian's
# syslog-ng package conflicts with rsyslog, which the tests need.
syslog-ng:
	tools/get-syslog-ng.sh $(SYSLOG_NG)

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...

# Linux is where relay runs in full; it must also build (tests included)
# for the systems in CROSS_GOOS, where it runs with what the README says is
# degraded.
CROSS_GOOS ?= darwin freebsd
cross:
	@set -e; for goos in $(CROSS_GOOS); do \
		echo "GOOS=$$goos $(GO) build ./... && GOOS=$$goos $(GO) vet ./..."; \
		GOOS=$$goos $(GO) build ./...; \
		GOOS=$$goos $(GO) vet ./...; \
	done

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin

# Install the binary, the systemd unit, the documentation, (if none exists
# yet) a config readable by the service's dynamic user, and (when not
# packaging into DESTDIR) the system group relay-log, whose members may read
# /var/log/relay:
#   make build && sudo make install && sudo systemctl daemon-reload && sudo systemctl enable --now relay
# DESTDIR and PREFIX work as usual for packaging; a package creates the
# group in its own install script.
PREFIX     ?= /usr/local
SYSTEMDDIR ?= /etc/systemd/system
install:
	@test -x bin/relay || { echo "bin/relay is missing: run 'make build' first (as yourself, not root)"; exit 1; }
	install -D -m 0755 bin/relay $(DESTDIR)$(PREFIX)/bin/relay
	install -D -m 0644 dist/relay.service $(DESTDIR)$(SYSTEMDDIR)/relay.service
	sed -i 's|/usr/local/|$(PREFIX)/|g' $(DESTDIR)$(SYSTEMDDIR)/relay.service
	install -d $(DESTDIR)$(PREFIX)/share/doc/relay/recipes
	install -m 0644 README.md config.toml.example docs/*.md $(DESTDIR)$(PREFIX)/share/doc/relay/
	install -m 0644 docs/recipes/*.toml $(DESTDIR)$(PREFIX)/share/doc/relay/recipes/
	test -e $(DESTDIR)/etc/relay/relay.toml || install -D -m 0644 config.toml.example $(DESTDIR)/etc/relay/relay.toml
	test -n "$(DESTDIR)" || getent group relay-log >/dev/null || groupadd --system relay-log

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/relay $(DESTDIR)$(SYSTEMDDIR)/relay.service
	rm -rf $(DESTDIR)$(PREFIX)/share/doc/relay
