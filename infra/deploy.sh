#!/usr/bin/env bash
# Deploys the stack, then loads Belgium's administrative units into its
# geography table (the deploy-time step of the reference geography; they
# are stored again on every deploy, a few seconds):
#
#   infra/build.sh && infra/deploy.sh [sam deploy options, e.g. --guided]
#
# Needs AWS credentials and the tools infra/build.sh installs.
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$PWD/../.tools/build-tools/bin:$PATH"
sam build
sam deploy "$@"
stack=$(sed -n 's/^stack_name *= *"\(.*\)"/\1/p' samconfig.toml 2>/dev/null | head -n 1)
stack=${BEALERT_STACK:-${stack:-bealert}}
output() {
  aws cloudformation describe-stacks --stack-name "$stack" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}
BEALERT_GEOGRAPHY_TABLE=$(output GeographyTableName)
export BEALERT_GEOGRAPHY_TABLE
echo "deploy: loading the administrative units into $BEALERT_GEOGRAPHY_TABLE"
cargo run --release -q -p bealert --features aws -- geo load --backend aws --shipped
