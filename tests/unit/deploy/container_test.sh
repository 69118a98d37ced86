#!/usr/bin/env bash
# The images run under podman (runc; crun refuses this host's hybrid cgroup layout):
#   proxy:  `sockmesh-proxy --help` in localhost/sockmesh-proxy:dev exits 0; the image,
#           run as the sidecar example runs it, serves GET /ready 200 as uid 1337.
#   loader: localhost/sockmesh-loader:dev run as the DaemonSet runs it (privileged, host
#           PID and network, the host's bpffs and cgroup tree) installs into an sm-* cgroup
#           and pin dir, reports them in `status`, and uninstalls leaving no pin behind;
#           the DaemonSet's readiness and liveness commands pass and fail on the status
#           file as documented. `agent`, run as the DaemonSet runs it against a temp CNI
#           bin/conf dir, reports ready, chains sockmesh-cni into the first conflist (the
#           copied static binary answers VERSION on the host), leaves the links attached
#           when stopped, and `uninstall` with the CNI dirs removes entry and binary.
# Containers are named sm-deploy-*, run with --rm and are removed on any exit. None uses
# podman's default bridge network (its 10.88.0.0/16 is outside the test ranges): each runs
# with --network none or the host's network.
#   container_test.sh proxy|loader SOURCE_DIR
set -uo pipefail
mode=$1 src=$2
if [ "$(id -u)" != 0 ]; then
  echo "SKIP: needs root (podman's root storage; the loader image loads BPF)"
  exit 77
fi
for tool in podman runc; do
  if ! command -v "$tool" >/dev/null; then
    echo "SKIP: $tool is not installed (sudo make deps installs it)"
    exit 77
  fi
done

# root here lacks CAP_SYS_RESOURCE: podman's default rlimits would fail at start.
lim() { local h=$1; [ "$h" = unlimited ] || [ "$h" -gt 4096 ] && h=4096; echo "$h"; }
nofile=$(lim "$(ulimit -Hn)") nproc=$(lim "$(ulimit -Hu)")
run=(podman run --runtime runc --rm --ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc")

name=sm-deploy-$mode-$$
cgroup="" pins="" cni=""
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
cleanup() {
  podman rm -f --ignore "$name" "$name-agent" >/dev/null 2>&1
  [ -n "$cni" ] && rm -rf "$cni"
  if [ -n "$pins" ] && [ -d "$pins" ]; then
    "${run[@]}" --privileged --pid=host --network=host -v /sys/fs/bpf:/sys/fs/bpf \
      localhost/sockmesh-loader:dev uninstall --pin-dir "$pins" >/dev/null 2>&1
    rm -rf "$pins"
  fi
  [ -n "$cgroup" ] && [ -d "$cgroup" ] && rmdir "$cgroup"
}
trap cleanup EXIT

image=localhost/sockmesh-$mode:dev
if ! podman image exists "$image"; then
  echo "FAIL: $image is missing (the fixture e2e.deploy.images_build builds it)"
  exit 1
fi

case $mode in
proxy)
  out=$("${run[@]}" --name "$name" --network none "$image" --help 2>&1)
  rc=$?
  [ $rc -eq 0 ] || fail "sockmesh-proxy --help exited $rc in $image: $out"
  grep -q '^usage: sockmesh-proxy' <<<"$out" || fail "no usage text from --help: $out"
  user=$(podman image inspect --format '{{.Config.User}}' "$image")
  [ "$user" = 1337:1337 ] || fail "$image runs as '$user', want 1337:1337"

  # As examples/sidecar.yaml runs it: read-only root, no capabilities, no seccomp filter
  # (the default profiles block io_uring). Its admin API answers /ready in its netns.
  if ! "${run[@]}" -d --name "$name" --network none --read-only --cap-drop ALL \
    --security-opt no-new-privileges --security-opt seccomp=unconfined "$image" \
    --workers 1 >/dev/null; then
    fail "the proxy container did not start"
  else
    pid=$(podman inspect --format '{{.State.Pid}}' "$name")
    uids=$(awk '$1 == "Uid:" { print $2, $3, $4, $5 }' "/proc/$pid/status")
    [ "$uids" = "1337 1337 1337 1337" ] || fail "the proxy runs with uids '$uids', want 1337"
    ready=""
    for _ in $(seq 50); do
      ready=$(nsenter -t "$pid" -n bash -c 'exec 3<>/dev/tcp/127.0.0.1/15000 &&
        printf "GET /ready HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n" >&3 &&
        cat <&3' 2>/dev/null | head -n 1 | tr -d '\r')
      [[ $ready == "HTTP/1.1 200"* ]] && break
      sleep 0.1
    done
    [[ $ready == "HTTP/1.1 200"* ]] || fail "GET /ready in the container answered '$ready', want 200:
$(podman logs "$name" 2>&1 | tail -n 5)"
  fi
  ;;
loader)
  root=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
  [ -n "$root" ] || { echo "SKIP: no cgroup v2 mount"; exit 77; }
  cgroup=$root/sm-deploy-$$
  pins=/sys/fs/bpf/sm-deploy-$$
  mkdir "$cgroup" || { echo "FAIL: mkdir $cgroup"; exit 1; }
  # As daemonset.yaml: read-only root with an in-memory /run/sockmesh, bpffs shared
  # (Bidirectional), the host's cgroup tree as a slave mount (HostToContainer).
  ds=("${run[@]}" --name "$name" --privileged --pid=host --network=host
    --read-only --tmpfs /run/sockmesh
    -v /sys/fs/bpf:/sys/fs/bpf:rshared -v /sys/fs/cgroup:/sys/fs/cgroup:rslave "$image")
  out=$("${ds[@]}" install --cgroup "$cgroup" --pin-dir "$pins" 2>&1) || fail "install: $out"
  for link in connect4 getsockopt sockops; do
    [ -e "$pins/links/$link" ] || fail "no pinned link $pins/links/$link after install"
  done
  out=$("${ds[@]}" status --pin-dir "$pins" 2>&1) || fail "status: $out"
  grep -qF "cgroup $cgroup" <<<"$out" || fail "status does not show links on $cgroup: $out"
  out=$("${ds[@]}" uninstall --pin-dir "$pins" 2>&1) || fail "uninstall: $out"
  [ -z "$(ls -A "$pins" 2>/dev/null)" ] || fail "pins left after uninstall: $(ls -R "$pins")"

  # The DaemonSet's probes, taken from the manifest, against the documented status file.
  probe() { # probe readinessProbe|livenessProbe: the script of its [/bin/sh, -c, script]
    awk -v p="$1:" '$1 == p { f = 1 } f && $1 == "command:" { c = 1; next }
      c && /^ *- / { if (++n == 3) { sub(/^ *- /, ""); print; exit } }' \
      "$src/deploy/kubernetes/daemonset.yaml" | sed "s/^'\(.*\)'$/\1/"
  }
  ready=$(probe readinessProbe) live=$(probe livenessProbe)
  if [ -z "$ready" ] || [ -z "$live" ]; then fail "probe commands not found in daemonset.yaml"; fi
  check() { # check WANT_RC SETUP PROBE
    local got
    "${run[@]}" --name "$name" --network none --entrypoint /bin/sh "$image" \
      -c "$2 && $3" >/dev/null 2>&1
    got=$?
    [ $got -eq "$1" ] || fail "probe [$3] after [$2] exited $got, want $1"
  }
  f=/run/sockmesh/agent.status
  check 0 "echo ready > $f" "$ready"
  check 1 "echo 'degraded: links missing' > $f" "$ready"
  check 1 "true" "$ready"
  check 0 "echo starting > $f" "$live"
  check 1 "echo ready > $f && touch -d @1000000000 $f" "$live"

  # The agent as daemonset.yaml runs it, with a temp dir as the node's CNI dirs.
  cni=$(mktemp -d /tmp/sm-deploy-cni.XXXXXX)
  mkdir -p "$cni/bin" "$cni/net.d" "$cni/run"
  echo '{"cniVersion": "1.0.0", "name": "sm-podnet", "plugins": [{"type": "bridge"}]}' \
    >"$cni/net.d/10-podnet.conflist"
  cni_mounts=(-v "$cni/bin:/host/opt/cni/bin" -v "$cni/net.d:/host/etc/cni/net.d")
  cni_flags=(--cni-bin-dir /host/opt/cni/bin --cni-conf-dir /host/etc/cni/net.d)
  if ! podman run --runtime runc --ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc" \
    -d --name "$name-agent" --privileged --pid=host --network=host --read-only \
    -v "$cni/run:/run/sockmesh" -v /sys/fs/bpf:/sys/fs/bpf:rshared \
    -v /sys/fs/cgroup:/sys/fs/cgroup:rslave "${cni_mounts[@]}" "$image" \
    agent --cgroup "$cgroup" --pin-dir "$pins" --interval 1 "${cni_flags[@]}" \
    --exclude-inbound-ports 15020 >/dev/null; then
    fail "the agent container did not start"
  else
    status=""
    for _ in $(seq 100); do
      status=$(head -n 1 "$cni/run/agent.status" 2>/dev/null)
      [ "$status" = ready ] && grep -q sockmesh-cni "$cni/net.d/10-podnet.conflist" && break
      sleep 0.1
    done
    [ "$status" = ready ] || fail "agent status '$status', want ready: $(podman logs "$name-agent" 2>&1 | tail -n 5)"
    grep -q '"type": "sockmesh-cni"' "$cni/net.d/10-podnet.conflist" ||
      fail "sockmesh-cni not chained: $(cat "$cni/net.d/10-podnet.conflist")"
    grep -q '"excludeInboundPorts": "15020"' "$cni/net.d/10-podnet.conflist" ||
      fail "the agent's settings are not in the chained entry: $(cat "$cni/net.d/10-podnet.conflist")"
    out=$(echo '{}' | CNI_COMMAND=VERSION "$cni/bin/sockmesh-cni" 2>&1) ||
      fail "the installed sockmesh-cni does not run on the host: $out"
    grep -q '"supportedVersions"' <<<"$out" || fail "sockmesh-cni VERSION answered: $out"
    podman stop -t 10 "$name-agent" >/dev/null 2>&1
    code=$(podman inspect --format '{{.State.ExitCode}}' "$name-agent")
    [ "$code" = 0 ] || fail "the agent exited $code on SIGTERM, want 0"
    [ "$(head -n 1 "$cni/run/agent.status")" = stopped ] || fail "status after stop: $(cat "$cni/run/agent.status")"
    [ -e "$pins/links/connect4" ] || fail "the links went with the agent (SIGTERM must leave them)"
    podman rm -f "$name-agent" >/dev/null 2>&1
    out=$("${run[@]}" --name "$name" --privileged --pid=host --network=host \
      -v /sys/fs/bpf:/sys/fs/bpf:rshared "${cni_mounts[@]}" "$image" \
      uninstall --pin-dir "$pins" "${cni_flags[@]}" 2>&1) ||
      fail "uninstall with the CNI dirs: $out"
    ! grep -q sockmesh-cni "$cni/net.d/10-podnet.conflist" || fail "still chained after uninstall"
    [ ! -e "$cni/bin/sockmesh-cni" ] || fail "sockmesh-cni left in the bin dir after uninstall"
    [ -z "$(ls -A "$pins" 2>/dev/null)" ] || fail "pins left after uninstall: $(ls -R "$pins")"
  fi
  ;;
*)
  echo "usage: container_test.sh proxy|loader SOURCE_DIR"
  exit 2
  ;;
esac

if [ $failures -ne 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "$image: all checks passed"
