# Sourced by clients/generate and clients/check: where the pinned tools live
# and how they get there. Everything is installed once and kept under
# ${XDG_CACHE_HOME:-$HOME/.cache}/wowchat-users/ (node_modules in
# clients/typescript/, ignored by git); a run that finds them does nothing.
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

install_tools() {
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
