# Sourced by infra/check.sh and infra/build.sh: installs pinned Python tools
# into a venv once (keyed by the pins), without pip's download cache.
#   pytools_install <venv dir> <pin>...
pytools_install() {
  local venv="$1"; shift
  local stamp py=""
  stamp="$(printf '%s\n' "$@" | sha1sum | cut -c1-12)"
  [ -f "$venv/.installed-$stamp" ] && return 0
  for p in python3.12 python3.13 /root/.pyenv/versions/3.12.*/bin/python3 "$HOME"/.pyenv/versions/3.12.*/bin/python3 python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
      py="$(command -v "$p")"; break
    fi
  done
  [ -n "$py" ] || { echo "infra: needs Python >= 3.10" >&2; return 1; }
  echo "infra: installing $* into $venv" >&2
  rm -rf "$venv"
  "$py" -m venv "$venv"
  "$venv/bin/pip" install --quiet --no-cache-dir --disable-pip-version-check "$@"
  touch "$venv/.installed-$stamp"
}
