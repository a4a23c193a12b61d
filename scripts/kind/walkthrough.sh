#!/usr/bin/env bash
# Seed 000's multi-cluster walkthrough on kind, for machines with Docker:
#   1. kind cluster from kind-config.yaml (control plane + kind-worker..kind-worker4, labelled
#      cluster=a / cluster=b),
#   2. the three images built from this repo's Dockerfile by scripts/images/build.sh (the same
#      build/images/<component>.tar archives the netns e2e runs) and loaded into kind,
#   3. kubectl apply -f dist/cluster-a.k8s.yaml, then dist/cluster-b.k8s.yaml (whose Job declares
#      cluster-2 on the central manager with a personal access token this script makes as root
#      and stores in Secret cluster-b/dragonfly-manager-token),
#   4. the pulls of the walkthrough with crictl inside the kind nodes, timed, next to a direct
#      registry pull that bypasses Dragonfly:
#        - kind-worker  (A): first pull, back to source through A's seed peer
#        - kind-worker  (A): after wiping its dfdaemon cache + deleting the pod + crictl rmi:
#                            remote-peer hit
#        - kind-worker3 (B): first pull, back to source through B's own seed peer
#        - kind-worker3 (B): after the same clearing: remote-peer hit
#   and, from the dfdaemon logs, whether each pull went back to source or came from peers.
#
# Usage: scripts/kind/walkthrough.sh            (creates the cluster if it does not exist)
# Env:   KIND_CLUSTER (default dragonfly), IMAGE (default the seed's
#        ghcr.io/dragonflyoss/dragonfly2/scheduler:v2.0.5), KEEP_CLUSTER=1 to keep it afterwards,
#        SKIP_BUILD=1 to load build/images/*.tar as they are, ARTIFACTS (dir for logs, default
#        ./kind-artifacts).
# Needs: docker, kind, kubectl, curl, node, buildah + podman (scripts/images/build.sh); network access to the image's registry and Docker Hub
# (mysql, redis, busybox, jaeger images).
set -euo pipefail
cd "$(dirname "$0")/../.."

CLUSTER="${KIND_CLUSTER:-dragonfly}"
IMAGE="${IMAGE:-ghcr.io/dragonflyoss/dragonfly2/scheduler:v2.0.5}"
ARTIFACTS="${ARTIFACTS:-kind-artifacts}"
VERSION="$(node -p 'require("./package.json").version' 2>/dev/null || sed -n 's/^  "version": "\(.*\)",$/\1/p' package.json)"
REGISTRY="ghcr.io/dragonfly-ts"
WAIT="${WAIT_TIMEOUT:-600s}"

log() { printf '\n== %s ==\n' "$*" >&2; }
die() { echo "walkthrough: $*" >&2; exit 1; }
for tool in docker kind kubectl curl node; do command -v "$tool" >/dev/null 2>&1 || die "needs $tool on PATH"; done
[ -f dist/cluster-a.k8s.yaml ] && [ -f dist/cluster-b.k8s.yaml ] || die "dist/cluster-{a,b}.k8s.yaml missing: run npm run synth"
mkdir -p "$ARTIFACTS"

collect() {
  # Always leave enough behind to see what happened.
  kubectl get pods -A -o wide >"$ARTIFACTS/pods.txt" 2>&1 || true
  for ns in cluster-a cluster-b; do
    for pod in $(kubectl -n "$ns" get pods -o name 2>/dev/null); do
      kubectl -n "$ns" logs "$pod" --all-containers --prefix >"$ARTIFACTS/$ns-${pod#pod/}.log" 2>&1 || true
    done
  done
  if [ "${KEEP_CLUSTER:-0}" != "1" ] && [ "${CREATED:-0}" = "1" ]; then
    kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
  fi
}
trap collect EXIT

CREATED=0
if ! kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  log "kind create cluster --name $CLUSTER --config kind-config.yaml"
  kind create cluster --name "$CLUSTER" --config kind-config.yaml --wait 120s
  CREATED=1
fi
kubectl config use-context "kind-$CLUSTER" >/dev/null

if [ "${SKIP_BUILD:-0}" != "1" ]; then
  log "scripts/images/build.sh ($REGISTRY/{manager,scheduler,dfdaemon}:$VERSION)"
  IMAGE_REGISTRY="$REGISTRY" IMAGE_TAG="$VERSION" scripts/images/build.sh
fi
for target in manager scheduler dfdaemon; do
  [ -f "build/images/$target.tar" ] || die "build/images/$target.tar missing: run scripts/images/build.sh"
  kind load image-archive --name "$CLUSTER" "build/images/$target.tar"
done

log "kubectl apply -f dist/cluster-a.k8s.yaml"
kubectl apply -f dist/cluster-a.k8s.yaml
kubectl -n cluster-a rollout status statefulset/dragonfly-mysql --timeout="$WAIT"
kubectl -n cluster-a rollout status statefulset/dragonfly-redis-master --timeout="$WAIT"
kubectl -n cluster-a rollout status deployment/dragonfly-manager --timeout="$WAIT"
kubectl -n cluster-a rollout status statefulset/dragonfly-scheduler --timeout="$WAIT"
kubectl -n cluster-a rollout status statefulset/dragonfly-seed-peer --timeout="$WAIT"
kubectl -n cluster-a rollout status daemonset/dragonfly-dfdaemon --timeout="$WAIT"

log "kubectl apply -f dist/cluster-b.k8s.yaml"
kubectl apply -f dist/cluster-b.k8s.yaml
# The user's step (docs/security.md): cluster B's Job registers with a personal access token of
# scope cluster, made by root through the console's NodePort (kind-config.yaml maps it to :8080).
log "personal access token of scope cluster -> Secret cluster-b/dragonfly-manager-token"
MANAGER_URL="${MANAGER_URL:-http://127.0.0.1:8080}"
json_field() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const v=JSON.parse(s)[process.argv[1]];if(typeof v!=="string")process.exit(1);process.stdout.write(v)})' "$1"; }
root_password="$(kubectl -n cluster-a get secret dragonfly-manager-credentials -o jsonpath='{.data.password}' | base64 -d)"
session="$(curl -fsS -X POST "$MANAGER_URL/api/v1/users/signin" -H 'content-type: application/json' \
  -d "{\"name\":\"root\",\"password\":\"$root_password\"}" | json_field token)"
pat="$(curl -fsS -X POST "$MANAGER_URL/api/v1/personal-access-tokens" -H "authorization: Bearer $session" \
  -H 'content-type: application/json' -d '{"name":"cluster-b-registration","scopes":["cluster"]}' | json_field token)"
kubectl -n cluster-b create secret generic dragonfly-manager-token --from-literal=token="$pat" --dry-run=client -o yaml | kubectl apply -f -
kubectl -n cluster-b wait --for=condition=complete job --all --timeout="$WAIT"
kubectl -n cluster-b rollout status statefulset/dragonfly-scheduler --timeout="$WAIT"
kubectl -n cluster-b rollout status statefulset/dragonfly-seed-peer --timeout="$WAIT"
kubectl -n cluster-b rollout status daemonset/dragonfly-dfdaemon --timeout="$WAIT"

now_ms() { date +%s%3N; }

# Pull with crictl on a node (through containerd's hosts.toml → the node's dfdaemon proxy).
pull_ms() {
  local node="$1" start end
  start="$(now_ms)"
  docker exec "$node" crictl pull "$IMAGE" >&2
  end="$(now_ms)"
  echo $((end - start))
}

# A direct pull: ctr with an empty hosts dir ignores certs.d, so containerd goes to the registry.
direct_pull_ms() {
  local node="$1" start end
  docker exec "$node" mkdir -p /tmp/direct-hosts
  start="$(now_ms)"
  docker exec "$node" ctr -n k8s.io images pull --hosts-dir /tmp/direct-hosts "$IMAGE" >/dev/null
  end="$(now_ms)"
  docker exec "$node" ctr -n k8s.io images rm --sync "$IMAGE" >/dev/null
  echo $((end - start))
}

dfdaemon_pod() {
  local ns="$1" node="$2"
  kubectl -n "$ns" get pods -l component=dfdaemon \
    -o jsonpath="{.items[?(@.spec.nodeName==\"$node\")].metadata.name}" | awk '{print $1}'
}

# Seed 000's "delete the dfdaemon pod": with the cache on a hostPath, wipe it first so the new
# pod starts empty (the chart's emptyDir went with the pod), then remove the image from the node.
clear_node() {
  local ns="$1" node="$2" pod
  pod="$(dfdaemon_pod "$ns" "$node")"
  [ -n "$pod" ] || die "no dfdaemon pod on $node in $ns"
  kubectl -n "$ns" exec "$pod" -c dfdaemon -- sh -c 'rm -rf /var/lib/dragonfly/* /var/lib/dragonfly/.[!.]* 2>/dev/null; true'
  kubectl -n "$ns" delete pod "$pod" --wait=true
  # The DaemonSet creates a replacement; wait for a pod with another name to be Ready.
  local next=""
  for _ in $(seq 1 120); do
    next="$(dfdaemon_pod "$ns" "$node")"
    [ -n "$next" ] && [ "$next" != "$pod" ] && break
    sleep 1
  done
  [ -n "$next" ] && [ "$next" != "$pod" ] || die "no new dfdaemon pod on $node after deleting $pod"
  kubectl -n "$ns" wait --for=condition=Ready "pod/$next" --timeout="$WAIT"
  docker exec "$node" crictl rmi "$IMAGE" >/dev/null
}

# How the last pull's blobs arrived, from the node's dfdaemon log ("download finished" lines).
sources() {
  local ns="$1" node="$2" pod logs b2s p2p
  pod="$(dfdaemon_pod "$ns" "$node")"
  logs="$(kubectl -n "$ns" logs "$pod" -c dfdaemon --since=10m 2>/dev/null | grep '"download finished"' || true)"
  b2s="$(grep -c '"backToSource":true' <<<"$logs" || true)"
  p2p="$(grep -c '"backToSource":false' <<<"$logs" || true)"
  echo "node dfdaemon: ${p2p} blobs from peers, ${b2s} back-to-source"
}

declare -a ROWS
row() { ROWS+=("$(printf '%-42s %-13s %8s ms   %s' "$1" "$2" "$3" "$4")"); }

log "direct registry pull (no Dragonfly) on kind-worker2"
t="$(direct_pull_ms kind-worker2)"; row "direct registry pull" kind-worker2 "$t" "ctr --hosts-dir <empty>"

log "cluster A: first pull on kind-worker (back-to-source via seed peer A)"
t="$(pull_ms kind-worker)"; row "A: back-to-source" kind-worker "$t" "$(sources cluster-a kind-worker)"

log "cluster A: clear kind-worker, pull again (remote-peer hit)"
clear_node cluster-a kind-worker
t="$(pull_ms kind-worker)"; row "A: remote-peer hit" kind-worker "$t" "$(sources cluster-a kind-worker)"

log "cluster B: first pull on kind-worker3 (back-to-source via seed peer B)"
t="$(pull_ms kind-worker3)"; row "B: back-to-source" kind-worker3 "$t" "$(sources cluster-b kind-worker3)"

log "cluster B: clear kind-worker3, pull again (remote-peer hit)"
clear_node cluster-b kind-worker3
t="$(pull_ms kind-worker3)"; row "B: remote-peer hit" kind-worker3 "$t" "$(sources cluster-b kind-worker3)"

log "results ($IMAGE)"
printf '%s\n' "${ROWS[@]}" | tee "$ARTIFACTS/walkthrough.txt"
