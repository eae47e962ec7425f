# kahets — two commands for a newcomer: `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

NODE_TEST := node --import tsx --test --test-reporter=spec
# Everything below runs on the Node.js kahets ships with (scripts/node.sh: fetched once into
# var/node/, checked against a pinned integrity), first on PATH for npm, npx, tests and bin/kahets.
# `make test-unit NODE_RUNTIME=system` runs the unit tests on the machine's own Node instead
# (.ci/run does both); NODE_VERSION=22 (or 24, or an exact version) tries another line.
NODE_RUNTIME ?= pinned
ifeq ($(NODE_RUNTIME),pinned)
NODE_DIR := $(shell scripts/node.sh dir)
export PATH := $(NODE_DIR)/bin:$(PATH)
NODE := $(NODE_DIR)/bin/node
endif
# The broker `make run` starts (scripts/kafka.sh KAFKA_VERSION; docs/kafka.md). The single-broker
# tests stay on 3.9.1 (KAHETS_TEST_KAFKA_VERSION=4.4.0 runs them on 4.4.0); the cluster tests use 4.4.0.
RUN_KAFKA_VERSION := 4.4.0
# Explicit file lists: on Node 20 a folder or a quoted glob runs zero tests and exits 0.
UNIT_TESTS := $(sort $(wildcard test/unit/*.test.ts))
INTEGRATION_TESTS := $(sort $(wildcard test/integration/*.test.ts))

.PHONY: help install build typecheck lint test test-unit test-integration release run kafka-start kafka-stop bench clean

help:
	@echo "make run      start a local Kafka (if none answers on 127.0.0.1:9092) and kahets with config/"
	@echo "make test     type check, lint, unit and integration tests (starts its own brokers)"
	@echo "make bench    benchmarks (prints a table, writes bench/results/)"
	@echo "make build    install dependencies and bundle src/ into dist/ (what bin/kahets runs)"
	@echo "make release  the .deb and the tarball, with their own Node, in dist/release/"

ifeq ($(NODE_RUNTIME),pinned)
$(NODE):
	scripts/node.sh fetch
endif

node_modules/.package-lock.json: package.json package-lock.json | $(NODE)
	npm ci --no-audit --no-fund
	@touch $@

install: node_modules/.package-lock.json

# dist/ is rebuilt when a source file, the lock file or the build script changed.
SOURCES := $(shell find src -name '*.ts') package.json package-lock.json scripts/build.sh
dist/kahets.js: $(SOURCES) node_modules/.package-lock.json
	scripts/build.sh

build: dist/kahets.js

typecheck: install
	npx tsc --noEmit

lint: install
	npx eslint .

test-unit: install
	$(NODE_TEST) $(UNIT_TESTS)

test-integration: build release
	scripts/kafka.sh fetch
	KAFKA_VERSION=4.4.0 scripts/kafka.sh fetch
	$(NODE_TEST) $(INTEGRATION_TESTS)

test: typecheck lint test-unit test-integration

# The version is read without Node: make reads this file before any Node is fetched.
VERSION := $(shell sed -nE 's/^  "version": "([^"]+)",$$/\1/p' package.json)
DEB_ARCH := $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
RELEASE_INPUTS := dist/kahets.js bin/kahets package.json package-lock.json config/buckets.schema.json \
  $(wildcard deploy/systemd/*) deploy/kahets.env deploy/buckets.json $(wildcard deploy/debian/*) \
  $(wildcard clients/php/*.php clients/php/src/*.php) docs/install.md scripts/release.sh scripts/node.sh
dist/release/kahets_$(VERSION)_$(DEB_ARCH).deb: $(RELEASE_INPUTS) | $(NODE)
	scripts/release.sh

release: dist/release/kahets_$(VERSION)_$(DEB_ARCH).deb

kafka-start:
	KAFKA_VERSION=$(RUN_KAFKA_VERSION) scripts/kafka.sh ensure

kafka-stop:
	KAFKA_VERSION=$(RUN_KAFKA_VERSION) scripts/kafka.sh stop

run: build kafka-start
	mkdir -p var
	bin/kahets run --env-file config/.env.dev.local

bench: build
	scripts/kafka.sh fetch
	node --import tsx bench/run.ts $(BENCH_ARGS)

clean:
	rm -rf dist var/data
