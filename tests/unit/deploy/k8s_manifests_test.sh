#!/usr/bin/env bash
# Every manifest under deploy/kubernetes validates against the Kubernetes v1.36 API
# schemas, and the validator rejects broken copies of them (wrong types, values outside
# an enum, a missing required field, unknown fields, an API version Kubernetes does not
# serve, a duplicate YAML key, a non-string ConfigMap value), naming the field. No
# cluster is used.
#   k8s_manifests_test.sh SOURCE_DIR VALIDATOR_DIR
set -uo pipefail
src=$1 validator=$2/validate.mjs
if ! command -v node >/dev/null; then
  echo "SKIP: node is not installed"
  exit 77
fi
if [ ! -f "$validator" ] || [ ! -d "$2/node_modules" ]; then
  echo "FAIL: validator not installed in $2 (the fixture unit.deploy.k8s_validator_install does it)"
  exit 1
fi
k8s=$src/deploy/kubernetes
tmp=$(mktemp -d /tmp/sm-deploy-k8s.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

mapfile -t manifests < <(find "$k8s" -name '*.yaml' -not -path '*/node_modules/*' | sort)
[ "${#manifests[@]}" -ge 5 ] || fail "expected at least 5 manifests under $k8s, found ${#manifests[@]}"
if ! node "$validator" "${manifests[@]}"; then
  fail "the manifests in $k8s do not validate"
fi

# broken NAME FILE SED_EXPR EXPECTED_MESSAGE: a copy of FILE changed by SED_EXPR must be
# rejected with EXPECTED_MESSAGE in the output.
broken() {
  local name=$1 file=$2 expr=$3 expect=$4 copy="$tmp/$1.yaml" out
  sed "$expr" "$file" >"$copy"
  if cmp -s "$file" "$copy"; then
    fail "$name: '$expr' changed nothing in $file (test out of date)"
    return
  fi
  out=$(node "$validator" "$copy" 2>&1)
  local rc=$?
  if [ $rc -ne 1 ]; then
    fail "$name: the validator exited $rc on a broken manifest (want 1): $out"
  elif ! grep -qF -- "$expect" <<<"$out"; then
    fail "$name: output lacks '$expect': $out"
  else
    echo "rejected as expected: $name"
  fi
}
ds=$k8s/daemonset.yaml
broken hostpid-string "$ds" 's/hostPID: true/hostPID: "yes"/' 'spec/template/spec/hostPID must be boolean'
broken propagation-enum "$ds" 's/mountPropagation: Bidirectional/mountPropagation: Sideways/' \
  'volumeMounts/0/mountPropagation must be equal to one of the allowed values'
broken container-no-name "$ds" 's/- name: loader$/- tty: false/' \
  'spec/template/spec/containers/0 must have required property name'
broken unserved-api "$ds" 's#^apiVersion: apps/v1$#apiVersion: apps/v1beta9#' \
  'no schema for apiVersion apps/v1beta9, kind DaemonSet'
broken duplicate-key "$ds" 's/^\( *\)hostNetwork: true.*/&\n\1hostNetwork: false/' \
  'Map keys must be unique'
broken port-string "$k8s/examples/sidecar.yaml" 's/containerPort: 15001/containerPort: "15001"/' \
  'initContainers/0/ports/0/containerPort must be integer'
broken configmap-int "$k8s/configmap.yaml" 's/SM_OUTBOUND_PORT: "15001"/SM_OUTBOUND_PORT: 15001/' \
  'data/SM_OUTBOUND_PORT must be string'
broken unknown-podspec-field "$ds" 's/hostPID: true/hostPid: true/' \
  'spec/template/spec/hostPid: unknown field "hostPid"'
broken unknown-nested-field "$ds" 's/mountPropagation: Bidirectional/mountPropogation: Bidirectional/' \
  'volumeMounts/0/mountPropogation: unknown field "mountPropogation"'
broken unknown-probe-field "$k8s/examples/sidecar.yaml" 's#path: /ready#pathh: /ready#' \
  'readinessProbe/httpGet/pathh: unknown field "pathh"'
broken sa-token-string "$k8s/rbac.yaml" \
  's/automountServiceAccountToken: false/automountServiceAccountToken: "no"/' \
  'automountServiceAccountToken must be boolean'

if [ $failures -ne 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all manifests valid; every broken copy rejected"
