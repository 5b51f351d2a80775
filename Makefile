# voicegw build and test entry points. Every target works offline once the
# module cache (or vendor/) and the Debian packages are present.
GO      ?= go
TAGS    ?= nolibopusfile
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: all build dev test deps lint bench fuzz vendor docker-build clean classifier-model

all: build

deps:
	scripts/install-deps.sh build

build: deps
	$(GO) build -tags $(TAGS) -trimpath -ldflags '$(LDFLAGS)' -o bin/voicegw ./cmd/voicegw
	$(GO) build -tags $(TAGS) -trimpath -ldflags '$(LDFLAGS)' -o bin/loadtest ./cmd/loadtest

# Run the gateway in dev mode: built-in dev tenant, in-process simulated
# backends, softphone on http://127.0.0.1:8080/ (the URL with its token is printed).
dev: build
	bin/voicegw serve --dev

# The whole test suite (what CI runs).
test:
	scripts/install-deps.sh test
	scripts/test.sh

lint:
	gofmt -l $$(git ls-files '*.go') | (! grep .)
	$(GO) vet -tags $(TAGS) ./...
	staticcheck -tags $(TAGS) ./...

bench:
	$(GO) test -tags $(TAGS) -run '^$$' -bench . -benchmem ./media/... ./gateway/... ./classifier/...

# Every fuzz target, FUZZTIME each (go test -fuzz takes one target at a time).
FUZZTIME ?= 30s
FUZZ_TARGETS = gateway:FuzzSentenceSplitter gateway:FuzzSIPDatagram gateway:FuzzChooseCodec \
	gateway/backends:FuzzParseSSE gateway/backends:FuzzDecodeRealtimeEvent media:FuzzReadWAV \
	classifier:FuzzNormalize classifier:FuzzClassify classifier:FuzzParsePack classifier:FuzzLoadBundle \
	sipmedia:FuzzNegotiate sipmedia:FuzzStreamPacket tenants:FuzzLoad
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
	  echo "== $${t#*:} (./$${t%%:*})"; \
	  $(GO) test -tags $(TAGS) -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) ./$${t%%:*}; \
	done

# Retrain the classifier bundle's model (classifier/packs/model.json and
# manifest.json) on the labelled training texts; prints the
# leave-one-file-out figures and the development set's.
# The files are classifier/testdata/{train,own}/*.jsonl and extra.jsonl.
classifier-model:
	$(GO) run ./classifier/internal/trainer -bundle classifier/packs -dev classifier/testdata/dev.jsonl

# Air-gapped build: vendor the modules, then build without network.
vendor:
	$(GO) mod vendor
	GOFLAGS=-mod=vendor GOPROXY=off $(GO) build -tags $(TAGS) -o bin/voicegw ./cmd/voicegw

clean:
	rm -rf bin
