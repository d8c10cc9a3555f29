#!/usr/bin/env python3
"""Checks that infra/template.yaml and the code agree.

* every function package (functions/*, but the local runner) has one
  AWS::Serverless::Function resource building its binary with cargo-lambda;
* every variable a function requires (REQUIRED_ENV in its src/lib.rs) is set
  in that resource's environment, to a parameter or to a resource of the
  right type (tables to AWS::DynamoDB::Table, queue URLs to AWS::SQS::Queue);
* an SQS-triggered function consumes the queue its QUEUE constant names, and
  its own queue URL variable points at that same queue;
* every queue's visibility timeout is at least six times the timeout of the
  function that consumes it;
* API functions route without the REST API's stage in the path
  (AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH), every API they serve carries a WAF
  web ACL (the per-client flood rules), and method settings name real paths
  in CloudFormation's ~1 encoding;
* no outside load can delay an alert: the public routes (the public page,
  its CAP files, the feed, the console's files, providers' receipts) are
  served by api-public, never by api-alerts (which keeps the operators'
  API), and every queue consumer's reserved concurrency is at least the sum
  of its queues' MaximumConcurrency (a parameter counted at its MaxValue,
  which it must have), so a full queue never throttles its own function.

Run with the tools' Python (cfn-lint's YAML loader understands !Ref & co):
    .tools/lint-tools/bin/python infra/check_template.py
"""
import pathlib
import re
import sys

from cfnlint.decode import cfn_yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
template = cfn_yaml.load(str(ROOT / "infra" / "template.yaml"))
resources = template["Resources"]
parameters = template.get("Parameters", {})
globals_fn = template.get("Globals", {}).get("Function", {})
problems = []

QUEUE_VARS = {
    "resolve": "BEALERT_RESOLVE_QUEUE_URL",
    "send-sms": "BEALERT_SMS_QUEUE_URL",
    "send-sms-cancel": "BEALERT_SMS_CANCEL_QUEUE_URL",
    "send-sms-routine": "BEALERT_SMS_ROUTINE_QUEUE_URL",
    "send-voice": "BEALERT_VOICE_QUEUE_URL",
    "send-voice-cancel": "BEALERT_VOICE_CANCEL_QUEUE_URL",
    "send-voice-routine": "BEALERT_VOICE_ROUTINE_QUEUE_URL",
    "send-email": "BEALERT_EMAIL_QUEUE_URL",
    "send-email-cancel": "BEALERT_EMAIL_CANCEL_QUEUE_URL",
    "send-email-routine": "BEALERT_EMAIL_ROUTINE_QUEUE_URL",
    "broadcast": "BEALERT_BROADCAST_QUEUE_URL",
    "public-social": "BEALERT_PUBLIC_SOCIAL_QUEUE_URL",
    "public-siren": "BEALERT_PUBLIC_SIREN_QUEUE_URL",
    "public-sign": "BEALERT_PUBLIC_SIGN_QUEUE_URL",
}


def target(value):
    """The parameter or resource a value points at: !Ref, !GetAtt, a !Sub
    naming one resource (a Secrets Manager dynamic reference), or an !If
    whose first branch does."""
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            ga = value["Fn::GetAtt"]
            return ga[0] if isinstance(ga, list) else str(ga).split(".")[0]
        if "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
            names = [n for n in re.findall(r"\$\{([A-Za-z0-9]+)\}", value["Fn::Sub"]) if not n.startswith("AWS")]
            return names[0] if len(names) == 1 else None
        if "Fn::If" in value:
            return target(value["Fn::If"][1])
    return None


def allowed(props, action, resource):
    """Whether a function's inline policies allow `action` on `resource`."""
    for policy in props.get("Policies", []):
        if not isinstance(policy, dict):
            continue
        for s in policy.get("Statement", []):
            actions = s.get("Action", [])
            actions = actions if isinstance(actions, list) else [actions]
            resources = s.get("Resource", [])
            resources = resources if isinstance(resources, list) else [resources]
            if s.get("Effect") == "Allow" and action in actions and resource in {target(r) for r in resources}:
                return True
    return False


def expected_type(var):
    if var.endswith("_TABLE"):
        return "AWS::DynamoDB::Table"
    if var.endswith("_QUEUE_URL"):
        return "AWS::SQS::Queue"
    if var.endswith("_SECRET"):
        return "AWS::SecretsManager::Secret"
    if var.endswith("_PLACE_INDEX"):
        return "AWS::Location::PlaceIndex"
    if var.endswith("_BUCKET"):
        return "AWS::S3::Bucket"
    if var.endswith("_FUNCTION_ARN"):
        return "AWS::Serverless::Function"
    if var.endswith("_ROLE_ARN"):
        return "AWS::IAM::Role"
    return None


functions = {
    (res.get("Metadata", {}).get("BuildProperties", {}) or {}).get("Binary"): (name, res)
    for name, res in resources.items()
    if res.get("Type") == "AWS::Serverless::Function"
}

packages = sorted(p.name for p in (ROOT / "functions").iterdir() if p.is_dir() and p.name != "local")
for pkg in packages:
    if pkg not in functions:
        problems.append(f"functions/{pkg} has no AWS::Serverless::Function building binary {pkg}")
        continue
    logical, res = functions[pkg]
    if res.get("Metadata", {}).get("BuildMethod") != "rust-cargolambda":
        problems.append(f"{logical}: BuildMethod must be rust-cargolambda")
    props = res.get("Properties", {})
    if props.get("CodeUri") != f"../functions/{pkg}":
        problems.append(f"{logical}: CodeUri should be ../functions/{pkg}")
    lib = (ROOT / "functions" / pkg / "src" / "lib.rs").read_text()
    m = re.search(r"REQUIRED_ENV: &\[&str\] = &\[(.*?)\];", lib, re.S)
    required = re.findall(r'"([A-Z0-9_]+)"', m.group(1)) if m else []
    if not required:
        problems.append(f"functions/{pkg}/src/lib.rs declares no REQUIRED_ENV")
    env = dict(globals_fn.get("Environment", {}).get("Variables", {}))
    env.update(props.get("Environment", {}).get("Variables", {}))
    for var in required:
        if var not in env:
            problems.append(f"{logical}: requires {var}, which the template does not set")
            continue
        t = target(env[var])
        if t is None:
            problems.append(f"{logical}: {var} is not a !Ref or !GetAtt")
        elif t in parameters:
            continue
        elif t not in resources:
            problems.append(f"{logical}: {var} points at {t}, which does not exist")
        elif expected_type(var) and resources[t]["Type"] != expected_type(var):
            problems.append(f"{logical}: {var} points at {t}, a {resources[t]['Type']}, not a {expected_type(var)}")
    q = re.search(r'pub const QUEUE: &str = "([a-z-]+)";', lib)
    if q:
        # A send function consumes its channel's queue and its lanes'
        # (QUEUE-cancel, QUEUE-routine): each lane's variable points at one.
        names = [n for n in QUEUE_VARS if n == q.group(1) or n.startswith(q.group(1) + "-")]
        sqs_events = [e for e in props.get("Events", {}).values() if e.get("Type") == "SQS"]
        consumed = {target(e["Properties"]["Queue"]) for e in sqs_events}
        own = {target(env.get(QUEUE_VARS[n])) for n in names}
        if consumed != own:
            problems.append(f"{logical}: consumes {sorted(map(str, consumed))} but {[QUEUE_VARS[n] for n in names]} point at {sorted(map(str, own))}")
        for e in sqs_events:
            p = e["Properties"]
            if "ReportBatchItemFailures" not in p.get("FunctionResponseTypes", []):
                problems.append(f"{logical}: its SQS event must report batch item failures")
            if "MaximumConcurrency" not in p.get("ScalingConfig", {}):
                problems.append(f"{logical}: its SQS event needs a MaximumConcurrency (the rate limit)")
        timeout = props.get("Timeout", globals_fn.get("Timeout", 3))
        for queue in consumed:
            vis = resources.get(queue, {}).get("Properties", {}).get("VisibilityTimeout", 30)
            if vis < 6 * timeout:
                problems.append(f"{queue}: visibility {vis}s is under 6x {logical}'s timeout {timeout}s")
            redrive = resources.get(queue, {}).get("Properties", {}).get("RedrivePolicy")
            if not redrive:
                problems.append(f"{queue}: no dead-letter queue")
                continue
            # A job no retry can mend is dead-lettered at once (JobQueue::dead_letter):
            # the function reads the redrive policy and sends to the dead-letter queue.
            dead = target(redrive.get("deadLetterTargetArn"))
            if not allowed(props, "sqs:GetQueueAttributes", queue):
                problems.append(f"{logical}: may not read {queue}'s redrive policy (sqs:GetQueueAttributes)")
            if not (allowed(props, "sqs:SendMessage", dead) and allowed(props, "sqs:GetQueueUrl", dead)):
                problems.append(f"{logical}: may not dead-letter to {dead} (sqs:GetQueueUrl, sqs:SendMessage)")

def api_refs(props):
    """The REST APIs a function's Api events attach it to."""
    return {target(e["Properties"].get("RestApiId")) for e in props.get("Events", {}).values() if e.get("Type") == "Api"}


served = {}
for logical, res in resources.items():
    if res.get("Type") != "AWS::Serverless::Function":
        continue
    props = res.get("Properties", {})
    for api in api_refs(props):
        served.setdefault(api, set()).update(
            e["Properties"]["Path"] for e in props["Events"].values() if e.get("Type") == "Api")
        env = dict(globals_fn.get("Environment", {}).get("Variables", {}))
        env.update(props.get("Environment", {}).get("Variables", {}))
        if str(env.get("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH", "")).lower() != "true":
            problems.append(f"{logical}: behind a REST API stage it needs AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH=true, or no route matches")
    if any(e.get("Type") == "HttpApi" for e in props.get("Events", {}).values()):
        problems.append(f"{logical}: an HttpApi event - HTTP APIs cannot carry the WAF web ACL")

for api, paths in served.items():
    if resources.get(api, {}).get("Type") != "AWS::Serverless::Api":
        problems.append(f"{api}: functions attach to it, but it is not an AWS::Serverless::Api")
        continue
    associations = [r for r in resources.values() if r.get("Type") == "AWS::WAFv2::WebACLAssociation"
                    and f"/restapis/${{{api}}}/stages/" in str(r["Properties"].get("ResourceArn"))]
    if not associations:
        problems.append(f"{api}: no AWS::WAFv2::WebACLAssociation on its stage (per-client flood rules)")
    for setting in resources[api]["Properties"].get("MethodSettings", []):
        path = setting["ResourcePath"]
        if path == "/*":
            continue
        decoded = path[1:].replace("~1", "/")
        if "/" in path[1:] or decoded not in paths:
            problems.append(f"{api}: MethodSettings path {path} is not a served path in ~1 encoding ({sorted(paths)})")


# Routes anyone may call without an operator's key: they must not share the
# operators' function (api-alerts), whose reserved concurrency sends alerts.
PUBLIC_ROUTES = {"/alerts", "/alerts/{file}", "/feed.atom", "/console", "/console/{file}", "/v1/receipts/{provider}"}
if "api-alerts" in functions:
    logical, res = functions["api-alerts"]
    paths = {e["Properties"]["Path"] for e in res.get("Properties", {}).get("Events", {}).values() if e.get("Type") == "Api"}
    for path in sorted(paths & PUBLIC_ROUTES):
        problems.append(f"{logical}: serves the public route {path}; public load would take the concurrency that sends alerts (serve it from api-public)")
if "api-public" in functions:
    logical, res = functions["api-public"]
    paths = {e["Properties"]["Path"] for e in res.get("Properties", {}).get("Events", {}).values() if e.get("Type") == "Api"}
    for path in sorted(PUBLIC_ROUTES - paths):
        problems.append(f"{logical}: does not serve the public route {path}")


unbounded = set()


def concurrency(value, where):
    """A MaximumConcurrency as high as a deployment can make it."""
    if isinstance(value, int):
        return value
    name = target(value)
    if name in parameters:
        if "MaxValue" not in parameters[name]:
            unbounded.add(f"{where}: MaximumConcurrency comes from {name}, which has no MaxValue (a deployment could raise it past the reserved concurrency)")
            return int(parameters[name].get("Default", 0))
        return int(parameters[name]["MaxValue"])
    problems.append(f"{where}: MaximumConcurrency {value!r} is neither a number nor a parameter")
    return 0


for logical, res in resources.items():
    if res.get("Type") != "AWS::Serverless::Function":
        continue
    props = res.get("Properties", {})
    sqs_events = [e for e in props.get("Events", {}).values() if e.get("Type") == "SQS"]
    if not sqs_events:
        continue
    total = 0
    for e in sqs_events:
        scaling = e["Properties"].get("ScalingConfig", {})
        if "MaximumConcurrency" not in scaling:
            problems.append(f"{logical}: its SQS event on {target(e['Properties']['Queue'])} has no MaximumConcurrency (it may take every instance)")
            continue
        total += concurrency(scaling["MaximumConcurrency"], logical)
    reserved = props.get("ReservedConcurrentExecutions")
    if not isinstance(reserved, int):
        problems.append(f"{logical}: consumes queues, so it needs a fixed ReservedConcurrentExecutions")
    elif reserved < total:
        problems.append(f"{logical}: reserved concurrency {reserved} is below the {total} its queues' MaximumConcurrency may run at once (throttled receives count towards the dead-letter limit)")

problems.extend(sorted(unbounded))

for binary in functions:
    if binary not in packages:
        problems.append(f"the template builds binary {binary}, but functions/{binary} does not exist")

if problems:
    print("template and code disagree:")
    for p in problems:
        print(f"  - {p}")
    sys.exit(1)
print(f"template and code agree: {len(packages)} functions, their variables, queues, timeouts, public routes and concurrency")
