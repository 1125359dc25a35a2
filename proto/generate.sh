#!/usr/bin/env bash
# Regenerates gen/ from proto/. The generated code is committed, so builds
# and CI never need this. Needs protoc (Debian: protobuf-compiler).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(mktemp -d)
GOBIN=$bin go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
GOBIN=$bin go install connectrpc.com/connect/cmd/protoc-gen-connect-go@v1.21.1
PATH=$bin:$PATH protoc -I proto \
	--go_out=. --go_opt=module=github.com/tokenim/tokenim \
	--connect-go_out=. --connect-go_opt=module=github.com/tokenim/tokenim \
	proto/tokenim/v1/*.proto
rm -rf "$bin"
