#!/usr/bin/env bash
# Issue 12's containers test: the mesh assembled from our images by a container runtime,
# with no enroll command of ours.
#   1. the loader image runs `agent` as daemonset.yaml runs it (privileged, host PID and
#      network, bpffs and the cgroup tree); a temp dir stands for the node's CNI dirs, so
#      it copies sockmesh-cni there and chains it into the node's conflist (a bridge on
#      198.18.9.0/24 in a node netns of ours);
#   2. podman (its CNI backend, pointed at those dirs) starts a workload container on that
#      network: podman's own CNI ADD runs sockmesh-cni, which enrolls the pod's netns;
#   3. the proxy image joins the workload's netns as its sidecar under podman's DEFAULT
#      seccomp profile (io_uring blocked: the proxy falls back to epoll), routing Host
#      "web" to a server in the node netns;
#   4. a request from the workload to an address nobody has, Host "web", is answered by
#      that server through the sidecar;
#   5. removing the containers unenrolls the pod (CNI DEL); the agent stops on SIGTERM
#      leaving the programs attached; uninstall removes pins, the chain entry and the
#      binary; nothing named sm-mesh-* is left.
# The workload and sidecar are placed below an sm-* cgroup where the agent attaches
# (--cgroup-parent), not the host's root cgroup: the test touches no other process.
#   mesh_containers_test.sh SOURCE_DIR
set -uo pipefail
src=$1
if [ "$(id -u)" != 0 ]; then
  echo "SKIP: needs root (podman's root storage, BPF, netns)"
  exit 77
fi
for tool in podman runc nsenter busybox python3 ip; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done
[ -x /usr/lib/cni/bridge ] || { echo "SKIP: needs containernetworking-plugins (/usr/lib/cni)"; exit 77; }
backend=$(podman info --format '{{.Host.NetworkBackend}}' 2>/dev/null)
[ "$backend" = cni ] || { echo "SKIP: podman's network backend is '$backend', not cni"; exit 77; }
for image in localhost/sockmesh-loader:dev localhost/sockmesh-proxy:dev; do
  podman image exists "$image" || { echo "FAIL: $image is missing (e2e.deploy.images_build builds it)"; exit 1; }
done
cg2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
[ -n "$cg2" ] || { echo "SKIP: no cgroup v2 mount"; exit 77; }

lim() { local h=$1; [ "$h" = unlimited ] || [ "$h" -gt 4096 ] && h=4096; echo "$h"; }
nofile=$(lim "$(ulimit -Hn)") nproc=$(lim "$(ulimit -Hu)")
tag=sm-mesh-$$
node=$tag-node net=$tag-net cg=$tag-cg cgroup=$cg2/$tag-cg pins=/sys/fs/bpf/$tag
agent=$tag-agent wl=$tag-wl sc=$tag-sc
tmp=$(mktemp -d /tmp/sm-mesh.XXXXXX)
server_pid=""
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
run=(podman run --runtime runc --ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc")
# podman with our CNI dirs, from the node netns (where the bridge plugin makes its bridge).
pod() { CONTAINERS_CONF=$tmp/containers.conf nsenter --net=/run/netns/"$node" podman "$@"; }
loader_image() { # loader_image ARGS...: the loader image as the DaemonSet runs it, once
  "${run[@]}" --rm --privileged --pid=host --network=host -v /sys/fs/bpf:/sys/fs/bpf:rshared \
    -v /sys/fs/cgroup:/sys/fs/cgroup:rslave -v "$tmp/bin:/host/opt/cni/bin" \
    -v "$tmp/net.d:/host/etc/cni/net.d" localhost/sockmesh-loader:dev "$@"
}
cleanup() {
  pod rm -f -t 0 --ignore "$sc" >/dev/null 2>&1 # the sidecar first: it uses wl's netns
  pod rm -f -t 0 --ignore "$wl" >/dev/null 2>&1
  podman rm -f -t 0 --ignore "$agent" >/dev/null 2>&1
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
  [ -d "$pins" ] && loader_image uninstall --pin-dir "$pins" >/dev/null 2>&1
  rm -rf "$pins"
  local d
  for d in /sys/fs/cgroup/*/"$cg"; do # runc made it in every v1 hierarchy too (hybrid)
    [ -d "$d" ] || continue
    rmdir "$d"/libpod-* "$d"/conmon 2>/dev/null
    rmdir "$d" 2>/dev/null
  done
  ip netns del "$node" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

mkdir -p "$tmp/bin" "$tmp/net.d" "$tmp/ipam" "$tmp/run" "$tmp/rootfs/bin" "$tmp/www" "$cgroup" || exit 1
ip netns add "$node" && ip -n "$node" link set lo up || { echo "FAIL: netns $node"; exit 1; }
cat >"$tmp/net.d/10-$net.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "$net", "plugins": [
  {"type": "bridge", "bridge": "sm-br$$", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "subnet": "198.18.9.0/24", "dataDir": "$tmp/ipam"}}]}
JSON
printf '[network]\ncni_plugin_dirs = ["%s/bin", "/usr/lib/cni"]\nnetwork_config_dir = "%s/net.d"\n' \
  "$tmp" "$tmp" >"$tmp/containers.conf"

# 1. The agent, as daemonset.yaml runs it.
"${run[@]}" -d --name "$agent" --privileged --pid=host --network=host --read-only \
  -v "$tmp/run:/run/sockmesh" -v /sys/fs/bpf:/sys/fs/bpf:rshared \
  -v /sys/fs/cgroup:/sys/fs/cgroup:rslave -v "$tmp/bin:/host/opt/cni/bin" \
  -v "$tmp/net.d:/host/etc/cni/net.d" localhost/sockmesh-loader:dev \
  agent --cgroup "$cgroup" --pin-dir "$pins" --interval 1 --cni-bin-dir /host/opt/cni/bin \
  --cni-conf-dir /host/etc/cni/net.d --exclude-inbound-ports 15000 >/dev/null ||
  { echo "FAIL: the agent container did not start"; exit 1; }
for _ in $(seq 100); do
  [ "$(head -n 1 "$tmp/run/agent.status" 2>/dev/null)" = ready ] && break
  sleep 0.1
done
[ "$(head -n 1 "$tmp/run/agent.status" 2>/dev/null)" = ready ] ||
  { echo "FAIL: agent not ready: $(cat "$tmp/run/agent.status" 2>&1) $(podman logs "$agent" 2>&1 | tail -n 5)"; exit 1; }
grep -q sockmesh-cni "$tmp/net.d/10-$net.conflist" || fail "sockmesh-cni not chained by the agent"

# 2. The workload: busybox and its libraries as a rootfs.
cp -L "$(command -v busybox)" "$tmp/rootfs/bin/busybox"
for lib in $(ldd "$(command -v busybox)" | awk '$3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
  mkdir -p "$tmp/rootfs$(dirname "$lib")" && cp -L "$lib" "$tmp/rootfs$lib"
done
out=$(pod run --runtime runc -d --name "$wl" --ulimit "nofile=$nofile:$nofile" \
  --ulimit "nproc=$nproc:$nproc" --network "$net" --cgroup-parent "/$cg" \
  --rootfs "$tmp/rootfs" /bin/busybox sleep 600 2>&1) || { echo "FAIL: workload: $out"; exit 1; }
wl_pid=$(podman inspect --format '{{.State.Pid}}' "$wl")
status=$(podman exec "$agent" sockmesh-loader status --pin-dir "$pins" 2>&1)
grep -q '^workloads: 1' <<<"$status" || fail "the workload was not enrolled by CNI ADD: $status"

# 3. The sidecar: the proxy image in the workload's netns, default seccomp profile.
cat >"$tmp/routes.json" <<JSON
{"virtual_hosts": [{"name": "web", "domains": ["web", "web:9080"],
   "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "web"}}]}],
 "clusters": [{"name": "web", "endpoints": [{"address": "198.18.9.1", "port": 9080}]}]}
JSON
chmod 644 "$tmp/routes.json"
out=$(pod run --runtime runc -d --name "$sc" --ulimit "nofile=$nofile:$nofile" \
  --ulimit "nproc=$nproc:$nproc" --network "container:$wl" --cgroup-parent "/$cg" \
  --read-only --cap-drop ALL -v "$tmp/routes.json:/etc/sockmesh/routes.json:ro" \
  localhost/sockmesh-proxy:dev --config /etc/sockmesh/routes.json --workers 1 \
  --access-log - 2>&1) || { echo "FAIL: sidecar: $out"; exit 1; }
ready=""
for _ in $(seq 50); do
  ready=$(nsenter -t "$wl_pid" -n bash -c 'exec 3<>/dev/tcp/127.0.0.1/15000 &&
    printf "GET /ready HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n" >&3 &&
    cat <&3' 2>/dev/null | head -n 1 | tr -d '\r')
  [[ $ready == "HTTP/1.1 200"* ]] && break
  sleep 0.1
done
[[ $ready == "HTTP/1.1 200"* ]] || fail "sidecar /ready: '$ready': $(podman logs "$sc" 2>&1 | tail -n 5)"
podman logs "$sc" 2>&1 | grep -q 'workers (epoll)' ||
  fail "the sidecar did not fall back to epoll under the default seccomp profile: $(podman logs "$sc" 2>&1 | head -n 3)"

# 4. The node's server, then a request from the workload to an address nobody has.
echo "hello from the node" >"$tmp/www/hello.txt"
ip netns exec "$node" python3 -m http.server --bind 198.18.9.1 --directory "$tmp/www" 9080 \
  >/dev/null 2>&1 &
server_pid=$!
for _ in $(seq 50); do
  ip netns exec "$node" bash -c 'exec 3<>/dev/tcp/198.18.9.1/9080' 2>/dev/null && break
  sleep 0.1
done
# (busybox's nc: its wget needs more of a root filesystem than this one has)
reply=$(podman exec "$wl" /bin/busybox sh -c 'printf "GET /hello.txt HTTP/1.0\r\nHost: web\r\n\r\n" |
  /bin/busybox nc -w 5 198.18.9.99 9080' 2>&1)
grep -q '^HTTP/1.[01] 200' <<<"$reply" && grep -q '^hello from the node' <<<"$reply" ||
  fail "request from the workload answered: '$reply'"
podman logs "$sc" 2>&1 | grep -q '/hello.txt' || fail "the sidecar's access log has no /hello.txt"

# 5. Removal: CNI DEL unenrolls; SIGTERM keeps the links; uninstall removes everything.
out=$(pod rm -f -t 0 "$sc" 2>&1) || fail "podman rm $sc: $out"
out=$(pod rm -f -t 0 "$wl" 2>&1) || fail "podman rm $wl: $out"
status=$(podman exec "$agent" sockmesh-loader status --pin-dir "$pins" 2>&1)
grep -q '^workloads: 0' <<<"$status" || fail "still enrolled after podman rm: $status"
podman stop -t 10 "$agent" >/dev/null 2>&1
[ "$(podman inspect --format '{{.State.ExitCode}}' "$agent")" = 0 ] || fail "agent exit code on SIGTERM"
[ -e "$pins/links/connect4" ] || fail "links went with the agent"
podman rm -f "$agent" >/dev/null 2>&1
out=$(loader_image uninstall --pin-dir "$pins" --cni-bin-dir /host/opt/cni/bin \
  --cni-conf-dir /host/etc/cni/net.d 2>&1) || fail "uninstall: $out"
[ ! -e "$pins" ] || fail "pins left: $(ls -R "$pins")"
! grep -q sockmesh-cni "$tmp/net.d/10-$net.conflist" || fail "still chained after uninstall"
[ ! -e "$tmp/bin/sockmesh-cni" ] || fail "sockmesh-cni left in the bin dir"
left=$(podman ps -a --format '{{.Names}}' | grep "^$tag" || true)
[ -z "$left" ] || fail "containers left: $left"

if [ $failures -ne 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "mesh in containers: enrolled by CNI, routed by the sidecar on epoll, nothing left"
