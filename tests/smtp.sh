#!/usr/bin/env bash
# A real SMTP server for the e-mail provider tests: aiosmtpd (PyPI) in
# .tools/smtp-venv, run by tests/smtp_relay.py. tests/run calls this before
# `cargo test`; the tests start the relay from that venv themselves.
#   tests/smtp.sh          installs it and prints the Python to use
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/infra/pytools.sh"
venv="$root/.tools/smtp-venv"
pytools_install "$venv" "aiosmtpd==1.4.6"
echo "$venv/bin/python"
