#!/usr/bin/env bash
# Validates everything under deploy/, offline:
#   1. every Kubernetes manifest against the Kubernetes OpenAPI schemas shipped in the
#      kubernetes-validate wheel (strict: unknown fields fail), for the oldest and newest
#      Kubernetes versions below; the kustomize output too when kubectl is installed;
#   2. both compose files against the Compose Specification schema shipped in check-jsonschema;
#   3. cross-file checks (validate.py): selectors, references, ports, roles, the lode configs.
# The Python tools install once into target/deploy-venv (about 15 s from PyPI); later runs take
# a few seconds. Exits non-zero on the first failing step.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=target/deploy-venv
REQUIREMENTS=(kubernetes-validate==1.37.0 check-jsonschema==0.39.0 PyYAML==6.0.3)
K8S_VERSIONS=(1.29.0 1.37.0)

if [[ ! -x $VENV/bin/python || "$(cat "$VENV/.requirements" 2>/dev/null)" != "${REQUIREMENTS[*]}" ]]; then
  echo "== deploy: installing ${REQUIREMENTS[*]} into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  timeout 300 "$VENV/bin/pip" install -q --disable-pip-version-check "${REQUIREMENTS[@]}"
  echo "${REQUIREMENTS[*]}" >"$VENV/.requirements"
fi

echo "== deploy: Kubernetes manifests ($("$VENV/bin/kubernetes-validate" --version 2>&1 | tail -1), strict)"
manifests=()
for f in deploy/kubernetes/*.yaml; do
  [[ $(basename "$f") == kustomization.yaml ]] || manifests+=("$f")
done
for v in "${K8S_VERSIONS[@]}"; do
  timeout 120 "$VENV/bin/kubernetes-validate" --strict --quiet -k "$v" "${manifests[@]}"
done
if command -v kubectl >/dev/null 2>&1; then
  rendered=target/deploy-kustomize.yaml
  timeout 60 kubectl kustomize deploy/kubernetes >"$rendered"
  for v in "${K8S_VERSIONS[@]}"; do
    timeout 120 "$VENV/bin/kubernetes-validate" --strict --quiet -k "$v" "$rendered"
  done
  echo "kustomize build: $(grep -c '^kind:' "$rendered") objects"
else
  echo "(kubectl not installed: kustomize build skipped; validate.py checks kustomization.yaml)"
fi

echo "== deploy: compose files (Compose Specification schema)"
timeout 60 "$VENV/bin/check-jsonschema" --builtin-schema vendor.compose-spec \
  deploy/docker-compose.yaml deploy/docker-compose.single.yaml

echo "== deploy: cross-file checks"
timeout 60 "$VENV/bin/python" deploy/validate.py
