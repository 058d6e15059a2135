# duomq developer commands. `make test` is the one test command (README, .ci/run).
GO        ?= go
PKGS      ?= ./...
TIMEOUT   ?= 20m
FUZZTIME  ?= 30s
BENCHTIME ?= 1s
# ARTIFACTS keeps what tests leave for people to look at (the status
# page's screenshots); CI keeps the folder.
ARTIFACTS ?= $(CURDIR)/test-artifacts

.PHONY: test not-run test-race unit lint fmt-check vet generate check-generated fuzz bench build dev setup

## test: everything CI checks: setup, formatting, vet, generated code, race tests
test: setup lint check-generated test-race

setup:
	@./scripts/setup.sh

build:
	$(GO) build -o bin/duomq ./cmd/duomq

## unit: quick tests without the race detector
unit:
	$(GO) test -short $(PKGS)

test-race: not-run
	DUOMQ_TEST_ARTIFACTS=$(ARTIFACTS) $(GO) test -race -timeout $(TIMEOUT) $(PKGS)

## not-run: says which tests this machine cannot run (they skip, or fail under CI=true)
not-run:
	@docker info >/dev/null 2>&1 || echo "NOT RUN here: no Docker engine answers: deploy/compose TestUnplannedLossDrill (image, Compose topology, drill)"
	@command -v chromium >/dev/null || echo "NOT RUN here: no chromium: dr/statuspage TestStatusPageInChromium, TestStatusPageWithEmptyAnswers"
	@[ "$$(id -u)" = 0 ] && command -v nft >/dev/null || echo "NOT RUN here: no root or no nftables: network-namespace tests (devcluster partitions, drills 3 and 5)"

lint: fmt-check vet

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

generate:
	$(GO) generate ./api/...

check-generated:
	@if command -v protoc >/dev/null; then ./api/check-generated.sh; \
	elif [ -n "$$CI" ]; then echo "check-generated: protoc missing in CI"; exit 1; \
	else echo "check-generated: NOT RUN (no protoc; run scripts/setup.sh)"; fi

## fuzz: every native fuzz target for FUZZTIME each
fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

## bench: storage and proxy benchmarks (with their references) and the broker bench
bench:
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) ./broker/...
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) ./proxy/
	$(GO) run ./cmd/duomq bench broker

## dev: the local topology (same as the README's first command)
dev:
	$(GO) run ./cmd/duomq dev --dir data/dev
