#!/usr/bin/env bash
# Creates .venv beside the checkout (if missing) and installs flyte-bridge with every extra.
# Sourced by the other scripts; needs only Python 3.10+, pip and, on Debian, apt for python3-venv.
# FLYTE_BRIDGE_VENV puts the environment elsewhere; PYTHON chooses the interpreter.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${FLYTE_BRIDGE_VENV:-$repo_root/.venv}"
python_bin="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
  if ! "$python_bin" -m venv "$venv" 2>/dev/null; then
    echo "python3 -m venv failed; installing Debian's python3-venv" >&2
    apt_get="apt-get"
    if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then
      apt_get="sudo apt-get"
    fi
    $apt_get update -qq && $apt_get install -y -qq python3-venv >/dev/null
    rm -rf "$venv"
    "$python_bin" -m venv "$venv"
  fi
  "$venv/bin/python" -m pip install -q --upgrade pip
fi

# The editable install picks up code changes by itself; it is redone only when pyproject.toml
# (the dependencies and entry points) changed since the last install into this environment.
stamp="$venv/.flyte-bridge-installed"
wanted="$(cksum < "$repo_root/pyproject.toml")"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
  "$venv/bin/python" -m pip install -q -e "$repo_root[dev]"
  echo "$wanted" > "$stamp"
fi
export PATH="$venv/bin:$PATH"
