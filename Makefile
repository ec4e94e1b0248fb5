# relay — a syslog relay with a disk queue per output.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
CONFIG  ?= config.toml.example

.PHONY: build run test test-short fuzz bench vet fmt clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/relay ./cmd/relay

# Start the relay on the example configuration: UDP and TCP on
# 127.0.0.1:5514, a file output at ./data/messages.log, metrics on
# http://127.0.0.1:9514/metrics. Stop it with Ctrl-C.
run: build
	./bin/relay -config $(CONFIG)

# The whole suite: vet, unit, integration and interop tests (with -race),
# then a short fuzz run of each fuzz target.
test: vet
	$(GO) test -race -count=1 -timeout 20m ./...
	$(MAKE) fuzz FUZZTIME=10s

# Unit tests only; skips the slower integration and interop tests.
test-short:
	$(GO) test -short -count=1 ./...

FUZZTIME ?= 30s
fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzFrameReader$$' -fuzztime=$(FUZZTIME) ./relay/syslog/
	$(GO) test -run='^$$' -fuzz='^FuzzReadPRI$$' -fuzztime=$(FUZZTIME) ./relay/syslog/
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeRecord$$' -fuzztime=$(FUZZTIME) ./queue/

bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
