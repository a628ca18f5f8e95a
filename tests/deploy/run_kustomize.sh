#!/usr/bin/env bash
# `kubectl kustomize` renders the base, every overlay, and an overlay with
# the optional ServiceMonitor component, without error and with the objects
# each one promises. Needs a kubectl whose kustomize is v4 or later (Debian
# 12's kubernetes-client 1.20 carries kustomize v2.0.3, too old: skipped).
# usage: run_kustomize.sh ROOT
set -euo pipefail
root=$1
k8s=$root/deploy/k8s
command -v kubectl >/dev/null || { echo "SKIP: no kubectl"; exit 77; }
kv=$(kubectl version --client -o json 2>/dev/null | sed -n 's/.*"kustomizeVersion": *"v\([0-9]*\).*/\1/p')
if [[ -z "$kv" || "$kv" -lt 4 ]]; then
  echo "SKIP: kubectl's kustomize is v${kv:-?}; these manifests need v4 or later"
  exit 77
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/anorand-kustomize.XXXXXX")
trap 'rm -rf "$work"' EXIT
status=0
render() {  # render NAME DIR EXPECTED-KINDS...
  local name=$1 dir=$2
  shift 2
  if ! kubectl kustomize "$dir" >"$work/$name.yaml" 2>"$work/$name.err"; then
    echo "FAIL: kubectl kustomize $dir"
    cat "$work/$name.err"
    status=1
    return
  fi
  local kinds
  kinds=$(sed -n 's/^kind: //p' "$work/$name.yaml" | sort | uniq -c | awk '{printf "%s%s", sep, $2 "x" $1; sep=" "}')
  for want in "$@"; do
    if ! grep -qx "kind: $want" "$work/$name.yaml"; then
      echo "FAIL: $name renders no $want"
      status=1
    fi
  done
  echo "ok   $name: $kinds"
}
render base "$k8s/base" Namespace ConfigMap Deployment Service PersistentVolumeClaim
render single "$k8s/overlays/single" Namespace ConfigMap Deployment Service PersistentVolumeClaim
render scaled "$k8s/overlays/scaled" Deployment Service HorizontalPodAutoscaler PodDisruptionBudget
render trainer "$k8s/overlays/trainer" Deployment Service HorizontalPodAutoscaler PodDisruptionBudget
if [[ $(grep -c '^kind: Deployment' "$work/trainer.yaml" 2>/dev/null) != 2 ]]; then
  echo "FAIL: overlay trainer renders $(grep -c '^kind: Deployment' "$work/trainer.yaml") Deployments, not 2"
  status=1
fi
# The optional component, on top of the scaled overlay.
# kustomize takes relative paths only.
mkdir -p "$work/with-servicemonitor"
cat >"$work/with-servicemonitor/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $(realpath --relative-to="$work/with-servicemonitor" "$k8s/overlays/scaled")
components:
  - $(realpath --relative-to="$work/with-servicemonitor" "$k8s/components/servicemonitor")
YAML
render scaled+servicemonitor "$work/with-servicemonitor" ServiceMonitor Deployment
if ((status == 0)); then echo "deploy kustomize: all rendered"; fi
exit $status
