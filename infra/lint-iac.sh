#!/usr/bin/env bash
# Lints the SAM template with cfn-lint, `sam validate --lint` and checkov.
# Run from anywhere (it moves to the repo root); no AWS credentials are needed.
# Usage: infra/lint-iac.sh [TEMPLATE]   (default template.yaml, relative to the root)
# The linters live in .venv-lint (gitignored), created on first run and
# re-created only when infra/requirements-lint.txt changes (hash in a stamp file).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

template=${1:-template.yaml}
requirements=infra/requirements-lint.txt
venv=.venv-lint
stamp="$venv/.requirements.sha256"
python=${PYTHON:-python3}

want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [[ ! -x "$venv/bin/python" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "lint-iac: installing linters into $venv (first run or $requirements changed; about a minute)" >&2
  started=$SECONDS
  "$python" -m venv --clear "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  "$venv/bin/pip" check --disable-pip-version-check >/dev/null
  echo "$want" >"$stamp"
  echo "lint-iac: installed in $((SECONDS - started)) s" >&2
fi

export SAM_CLI_TELEMETRY=0
# sam resolves a region while loading; a dummy one keeps it offline-safe.
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1}

log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT
failed=0

# run NAME CMD...: runs a linter, prints one line, shows its output on failure.
run() {
  local name=$1
  shift
  if "$@" >"$log/$name" 2>&1; then
    echo "ok    $name"
  else
    echo "FAIL  $name (exit $?): $*"
    sed 's/^/      /' "$log/$name"
    failed=1
  fi
}

# House rules (STYLE.md item 11) that cfn-lint and sam validate do not check:
# both accept any string as Runtime, e.g. a typo'd "provided.al2032" in Globals.
house_rules() {
  "$venv/bin/python" - "$template" <<'PY'
import sys
from samtranslator.yaml_helper import yaml_parse

t = yaml_parse(open(sys.argv[1]).read())
problems = []
g = t.get("Globals", {}).get("Function", {})
for key, want in [("Runtime", "provided.al2023"), ("Architectures", ["arm64"]),
                  ("Handler", "bootstrap"), ("Tracing", "Active")]:
    if g.get(key) != want:
        problems.append(f"Globals.Function.{key} is {g.get(key)!r}, want {want!r}")
contract = {"TABLE_NAME", "SEND_QUEUE_URL", "SEND_DLQ_URL", "EVENTS_QUEUE_URL",
            "TENANT_SECRET_PREFIX", "GRAPH_API_BASE_URL", "GRAPH_API_VERSION",
            "SEND_MPS_CAP", "SENDER_MAX_CONCURRENCY", "RETENTION_DAYS",
            "METRICS_NAMESPACE"}
names = set(g.get("Environment", {}).get("Variables", {}))
if names != contract:
    problems.append(f"Globals environment differs from the contract: "
                    f"missing {sorted(contract - names)}, extra {sorted(names - contract)}")
for name, r in t.get("Resources", {}).items():
    if r.get("Type") != "AWS::Serverless::Function":
        continue
    props, meta = r.get("Properties", {}), r.get("Metadata", {})
    for key in ("Runtime", "Architectures", "Handler"):
        if key in props and props[key] != g.get(key):
            problems.append(f"{name}.{key} overrides Globals with {props[key]!r}")
    if meta.get("BuildMethod") != "rust-cargolambda" or not meta.get("BuildProperties", {}).get("Binary"):
        problems.append(f"{name}: Metadata needs BuildMethod rust-cargolambda and BuildProperties.Binary")
    if "Timeout" not in props or "LogGroup" not in props.get("LoggingConfig", {}):
        problems.append(f"{name}: needs its own Timeout and LoggingConfig.LogGroup")
for p in problems:
    print(p)
sys.exit(1 if problems else 0)
PY
}

run house-rules house_rules
run cfn-lint "$venv/bin/cfn-lint" "$template"
run sam-validate "$venv/bin/sam" validate --lint --template "$template"

# --skip-download: checkov would otherwise try to fetch guidelines from Prisma
# Cloud (offline here) and print a traceback. Skips are documented beside each
# resource (Metadata.checkov.skip) and in docs/developing.md.
checkov_scan() {
  local out
  out=$("$venv/bin/checkov" -f "$template" --framework cloudformation --compact --quiet --skip-download 2>&1) || {
    echo "$out"
    return 1
  }
  echo "$out"
  # A template checkov cannot parse yields no checks and exit 0: require a summary.
  grep -q 'Failed checks: 0,' <<<"$out"
}
run checkov checkov_scan
if [[ $failed -eq 0 ]]; then
  summary=$(grep -o 'Passed checks: [0-9]*, Failed checks: [0-9]*, Skipped checks: [0-9]*' "$log/checkov" || true)
  [[ -n $summary ]] && echo "      checkov: $summary"
fi

exit "$failed"
