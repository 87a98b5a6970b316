# Sourced by clients/generate and clients/check: where the pinned tools live
# and how they get there. Everything is installed once and kept under
# ${XDG_CACHE_HOME:-$HOME/.cache}/wowchat-users/ (node_modules in
# clients/typescript/, ignored by git; Go and its libraries are Debian 12's
# packages, installed with apt-get); a run that finds them does nothing.
# shellcheck shell=bash disable=SC2034  # the variables are for the scripts that source it

CLIENTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$CLIENTS")
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/wowchat-users"
# The same buf as .ci/run's lint and breaking checks.
BUF_DIR="$CACHE/buf-1.75.0"
BUF="$BUF_DIR/node_modules/.bin/buf"
# Named after the requirements' hash: new pins, new venv.
PY_VENV="$CACHE/venv-clients-$(sha256sum "$CLIENTS/python/requirements.txt" | cut -c1-12)"
PY="$PY_VENV/bin/python"
TS_DIR="$CLIENTS/typescript"
GO_DIR="$CLIENTS/go"
# Go from Debian 12 (bookworm): the Go module proxy is out of CI's reach, so
# the compiler, the two plugins and the libraries the generated code imports
# are Debian's packages, and the module is built in GOPATH mode against
# /usr/share/gocode (in_gopath). golang-github-golang-protobuf-1-5-dev: apt
# would otherwise pick 1.3, which predates google.golang.org/protobuf and
# cannot marshal what protoc-gen-go generates.
GO_PACKAGES=(golang-go protoc-gen-go protoc-gen-go-grpc golang-google-protobuf-dev
  golang-google-grpc-dev golang-google-genproto-dev golang-github-golang-protobuf-1-5-dev)
# The generated files name the plugin's version: another one, another output.
GO_PLUGINS=("protoc-gen-go v1.28.1" "protoc-gen-go-grpc 1.0")

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    echo "clients: needs root or sudo to run: $*" >&2
    return 1
  fi
}

install_go_tools() {
  local missing=() package plugin
  for package in "${GO_PACKAGES[@]}"; do
    # shellcheck disable=SC2016  # dpkg-query's format, not the shell's
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null)" = installed ] ||
      missing+=("$package")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 ||
      { echo "clients: the Go client needs Debian 12's packages ${GO_PACKAGES[*]}" >&2; return 1; }
    echo "installing ${missing[*]}" >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" </dev/null >/dev/null
  fi
  for plugin in "${GO_PLUGINS[@]}"; do
    [ "$("${plugin%% *}" --version 2>/dev/null)" = "$plugin" ] ||
      { echo "clients: $(command -v "${plugin%% *}" || echo "${plugin%% *}") is not $plugin (Debian 12's)" >&2; return 1; }
  done
}

# in_gopath DIR COMMAND...: runs COMMAND (`go vet ./...`) in the module's
# folder in GOPATH mode: the module at its import path (a link in DIR/src),
# Debian's libraries after it, the build cache under $CACHE, no cgo (no C
# compiler needed).
in_gopath() {
  local gopath=$1 module=$1/src/wowchat.dev/users/gen/go
  shift
  mkdir -p "$(dirname "$module")"
  ln -sfn "$GO_DIR" "$module"
  (cd "$module" && env GO111MODULE=off GOFLAGS= GOPROXY=off GOPATH="$gopath:/usr/share/gocode" \
    GOCACHE="$CACHE/go-build" CGO_ENABLED=0 "$@")
}

install_tools() {
  install_go_tools
  if [ ! -x "$BUF" ]; then
    npm install --silent --no-audit --no-fund --prefix "$BUF_DIR" @bufbuild/buf@1.75.0 </dev/null
  fi
  if [ ! -f "$PY_VENV/.installed" ]; then
    rm -rf "$PY_VENV"
    python3 -m venv "$PY_VENV"
    "$PY" -m pip install --quiet --disable-pip-version-check --no-input \
      -r "$CLIENTS/python/requirements.txt" </dev/null
    "$PY" -m pip check --disable-pip-version-check >/dev/null
    touch "$PY_VENV/.installed"
  fi
  # npm ci again only when the lock file changed since the last one.
  if ! cmp -s "$TS_DIR/package-lock.json" "$TS_DIR/node_modules/.wowchat-installed-lock"; then
    (cd "$TS_DIR" && npm ci --silent --no-audit --no-fund </dev/null)
    cp "$TS_DIR/package-lock.json" "$TS_DIR/node_modules/.wowchat-installed-lock"
  fi
}

# One installer at a time: two runs at once would race on the venv and on
# node_modules.
ensure_tools() {
  mkdir -p "$CACHE"
  (
    flock 9
    install_tools
  ) 9>"$CACHE/clients.lock"
}
