#!/usr/bin/env bash
# Sidecar bench: sockmesh-proxy (routed and passthrough) vs HAProxy vs nginx as the sidecar
# behind the same Istio-style iptables interception, plus a no-sidecar baseline. wrk with
# keep-alive gives requests/s and p50/p99; /proc gives each sidecar's CPU per request and
# its memory idle and holding 10,000 keep-alive client connections.
#
#   bench/proxy/run.sh [BUILD_DIR]        (root; about 9 minutes with the defaults)
#
# Topology, all created here and removed on exit:
#   netns sm-b<pid>-app 198.18.0.1  wrk (uid 1000) -> iptables REDIRECT -> sidecar :15001
#                                   (uid 1337, so its own connects go out untouched)
#        | veth
#   netns sm-b<pid>-srv 198.18.0.2  backend: nginx, 1 worker, `return 200`, port 8080
# The baseline row runs wrk as uid 1337: same netns and route, no redirect, no sidecar.
#
# Knobs (environment): SM_PROXY_BENCH_SECONDS (10 per cell), SM_PROXY_BENCH_REPS (2; the
# median is reported), SM_PROXY_BENCH_CONNS ("16 64"), SM_PROXY_BENCH_HOLD (10000),
# SM_PROXY_BENCH_SIDECARS ("none sockmesh sockmesh-epoll sockmesh-passthrough haproxy nginx";
# sockmesh-epoll[-passthrough] run this build with --event-loop epoll, the fallback where
# seccomp blocks io_uring, and the report adds its ratio to io_uring),
# SM_PROXY_BENCH_VARIANTS ("unpinned pinned": pinned = wrk on CPU 0, the sidecar on CPU 1,
# the backend free), SM_PROXY_BENCH_PERF (1: perf record sockmesh-proxy under load),
# SM_PROXY_BENCH_BEFORE (the path of another sockmesh-proxy build, an older commit's: it
# runs as sidecars "before" and "before-passthrough", interleaved with the others in the
# same run, and the report adds the ratio of this build to it; list them in
# SM_PROXY_BENCH_SIDECARS).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=$(realpath "${1:-${SM_BUILD_DIR:-$repo/build}}")
secs=${SM_PROXY_BENCH_SECONDS:-10}
reps=${SM_PROXY_BENCH_REPS:-2}
conns_list=${SM_PROXY_BENCH_CONNS:-"16 64"}
hold_n=${SM_PROXY_BENCH_HOLD:-10000}
sidecars=${SM_PROXY_BENCH_SIDECARS:-"none sockmesh sockmesh-epoll sockmesh-passthrough haproxy nginx"}
variants=${SM_PROXY_BENCH_VARIANTS:-"unpinned pinned"}
do_perf=${SM_PROXY_BENCH_PERF:-1}
before_src=${SM_PROXY_BENCH_BEFORE:-}
wrk_threads=1
py=/usr/bin/python3
client_uid=1000 proxy_uid=1337

die() { echo "proxy bench: $*" >&2; exit 1; }
progress() { printf '  [%3ds] %s\n' "$SECONDS" "$*" >&2; }
[ "$(id -u)" = 0 ] || die "needs root (it creates netns and iptables rules)"
for tool in wrk haproxy nginx setpriv taskset ip iptables-restore "$py"; do
  command -v "$tool" >/dev/null || die "$tool not found (make deps)"
done
for bin in sockmesh-proxy sockmesh-loader; do
  [ -x "$build/bin/$bin" ] || die "$build/bin/$bin missing (make build)"
done

# 10,000 held connections need that many fds in the client and in the sidecar (HAProxy
# reserves two per connection). Without CAP_SYS_RESOURCE the hard limit is the ceiling.
ulimit -Hn 1048576 2>/dev/null || true
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -gt $((hold_n + 1000)) ] ||
  die "open-files limit $(ulimit -n) is too low for $hold_n held connections"

tag=sm-b$$
app=$tag-app srv=$tag-srv
app_ip=198.18.0.1 srv_ip=198.18.0.2
url=http://$srv_ip:8080/
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=$repo/bench/results/proxy-$stamp
tmp=$(mktemp -d "/tmp/$tag.XXXXXX")
chmod 755 "$tmp"
mkdir -p "$out"/{wrk,place,logs,conf} "$tmp/backend" "$tmp/sidecar"
chown "$proxy_uid:$proxy_uid" "$tmp/sidecar"
cp "$here/conns.py" "$tmp/"  # run as the client uid, which may not read the tree
# The build dir is shared: measure one binary for the whole run, whatever rebuilds meanwhile.
cp "$build/bin/sockmesh-proxy" "$tmp/sockmesh-proxy"
proxy_bin=$tmp/sockmesh-proxy
before_bin=$tmp/sockmesh-proxy-before
if [ -n "$before_src" ]; then
  [ -x "$before_src" ] || die "SM_PROXY_BENCH_BEFORE=$before_src: not an executable"
  cp "$before_src" "$before_bin"
fi

started=()
cleanup() {
  local rc=$? p
  set +e
  for p in "${started[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${started[@]}"; do
    for _ in $(seq 20); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  ip netns del "$app" 2>/dev/null
  ip netns del "$srv" 2>/dev/null
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# forget PID: it has exited and was waited for.
forget() {
  local keep=() p
  for p in "${started[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  started=("${keep[@]}")
}
stop() {
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  forget "$1"
}

# ---- network ------------------------------------------------------------------------------
ip netns add "$app"
ip netns add "$srv"
ip link add "$tag-a" type veth peer name "$tag-s"
ip link set "$tag-a" netns "$app"
ip link set "$tag-s" netns "$srv"
ip -n "$app" addr add "$app_ip/30" dev "$tag-a"
ip -n "$srv" addr add "$srv_ip/30" dev "$tag-s"
for ns in "$app" "$srv"; do ip -n "$ns" link set lo up; done
ip -n "$app" link set "$tag-a" up
ip -n "$srv" link set "$tag-s" up
"$build/bin/sockmesh-loader" enroll --mode iptables --netns "/run/netns/$app" \
  --proxy-uid "$proxy_uid" >/dev/null
ip netns exec "$app" iptables-save -t nat >"$out/conf/iptables-nat.txt"

# ---- configs ------------------------------------------------------------------------------
nginx_temp_paths() {  # every temp path in a dir the worker user can write
  local d
  for d in client_body proxy fastcgi uwsgi scgi; do echo "  ${d}_temp_path $1/$d;"; done
}
cat >"$tmp/backend.conf" <<EOF
daemon off;
worker_processes 1;
worker_rlimit_nofile $(ulimit -n);
pid $tmp/backend/nginx.pid;
error_log $tmp/backend/error.log warn;
events { worker_connections 16384; }
http {
  access_log off;
  keepalive_requests 1000000000;
  keepalive_timeout 600s;
$(nginx_temp_paths "$tmp/backend")
  server {
    listen $srv_ip:8080 backlog=4096;
    location / { default_type text/plain; return 200 "hello from the backend\n"; }
  }
}
EOF
cat >"$tmp/routes.json" <<EOF
{
  "virtual_hosts": [
    {"name": "backend", "domains": ["$srv_ip", "$srv_ip:8080"],
     "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "backend"}}]}
  ],
  "clusters": [
    {"name": "backend", "endpoints": [{"address": "$srv_ip", "port": 8080}]}
  ]
}
EOF
# maxconn: room for the held connections plus their upstreams. HAProxy wants 2 fds per
# connection; `no strict-limits` lets it start under a lower hard limit (it warns).
cat >"$tmp/haproxy.cfg" <<EOF
global
  nbthread 2
  maxconn $((hold_n + 2000))
  no strict-limits
defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 600s
  timeout server 600s
  timeout http-keep-alive 600s
frontend outbound
  bind :15001
  http-response set-header x-sidecar haproxy
  default_backend backend
backend backend
  server backend $srv_ip:8080
EOF
cat >"$tmp/nginx.conf" <<EOF
daemon off;
worker_processes 2;
worker_rlimit_nofile $(ulimit -n);
pid $tmp/sidecar/nginx.pid;
error_log $tmp/sidecar/error.log warn;
events { worker_connections $((hold_n + 2000)); }
http {
  access_log off;
  keepalive_requests 1000000000;
  keepalive_timeout 600s;
$(nginx_temp_paths "$tmp/sidecar")
  upstream backend {
    server $srv_ip:8080;
    keepalive 64;
    keepalive_requests 1000000000;
    keepalive_timeout 600s;
  }
  server {
    listen 15001 backlog=4096;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      add_header x-sidecar nginx always;
    }
  }
}
EOF
cp "$tmp"/{backend.conf,routes.json,haproxy.cfg,nginx.conf} "$out/conf/"

# ---- process bookkeeping -----------------------------------------------------------------
tree_pids() {  # PID and its descendants (nginx: master and workers), one per line
  local p children
  for p in "$@"; do
    echo "$p"
    mapfile -t children < <(pgrep -P "$p" || true)
    tree_pids "${children[@]}"
  done
}
proc_ticks() {  # utime+stime of these processes, all threads, in clock ticks
  local total=0 p line f
  for p in "$@"; do
    read -r line <"/proc/$p/stat" || continue
    read -ra f <<<"${line##*) }"
    total=$((total + f[11] + f[12]))
  done
  echo "$total"
}
sleeps() {  # voluntary context switches of these processes, all threads: each is a
  # block in epoll_wait/io_uring_enter that a wake-up (~20 us across CPUs here) must end
  local total=0 p t k v _
  for p in "$@"; do
    for t in /proc/"$p"/task/*; do
      [ -r "$t/status" ] || continue
      while read -r k v _; do
        [ "$k" = voluntary_ctxt_switches: ] && total=$((total + v))
      done <"$t/status"
    done
  done
  echo "$total"
}
busy_ticks() {  # every CPU's non-idle time: all processes, softirqs, the kernel
  local user nice system irq softirq steal
  read -r _ user nice system _ _ irq softirq steal _ </proc/stat
  echo $((user + nice + system + irq + softirq + steal))
}
child_ms=0
children_cpu() {  # sets child_ms: CPU of this shell's waited-for children (no fork)
  local user sys m s
  times >"$tmp/times"
  { read -r _; read -r user sys; } <"$tmp/times"
  child_ms=0
  for m in "$user" "$sys"; do  # "1m2.345s"
    s=${m#*m}
    s=${s%s}
    child_ms=$((child_ms + ${m%%m*} * 60000 + 10#${s/./}))
  done
}
memory_kb() {  # "RSS PSS" summed over the tree: PSS splits nginx's shared pages fairly
  local rss=0 pss=0 p k v _
  for p in "$@"; do
    while read -r k v _; do [ "$k" = VmRSS: ] && rss=$((rss + v)); done <"/proc/$p/status"
    while read -r k v _; do [ "$k" = Pss: ] && pss=$((pss + v)); done <"/proc/$p/smaps_rollup"
  done
  echo "$rss $pss"
}

# app_cmd CPUS|- UID CMD...: sets cmd to run CMD in the app netns as UID, maybe pinned.
# Each wrapper execs the next, so `"${cmd[@]}" &` leaves $! = CMD's own pid.
app_cmd() {
  cmd=(ip netns exec "$app")
  if [ "$1" != - ]; then cmd+=(taskset -c "$1"); fi
  cmd+=(setpriv --reuid "$2" --regid "$2" --clear-groups)
  shift 2
  cmd+=("$@")
}
in_app() {  # the same, in the foreground
  local cmd
  app_cmd "$@"
  "${cmd[@]}"
}

# ---- backend ------------------------------------------------------------------------------
ip netns exec "$srv" nginx -e "$tmp/backend/error.log" -p "$tmp/backend" \
  -c "$tmp/backend.conf" >"$out/logs/backend.log" 2>&1 &
backend_pid=$!
started+=("$backend_pid")
for _ in $(seq 50); do
  in_app - "$proxy_uid" "$py" "$tmp/conns.py" probe "$url" >/dev/null 2>&1 && break
  sleep 0.1
done
in_app - "$proxy_uid" "$py" "$tmp/conns.py" probe "$url" >/dev/null || die "backend did not come up"
mapfile -t backend_tree < <(tree_pids "$backend_pid")

# ---- sidecars -----------------------------------------------------------------------------
sidecar_pid=
start_sidecar() {  # NAME CPUS|-
  local cmd
  case $1 in
    none) sidecar_pid=; return ;;
    sockmesh) cmd=("$proxy_bin" --workers 2 --config "$tmp/routes.json") ;;
    sockmesh-passthrough) cmd=("$proxy_bin" --workers 2) ;;
    sockmesh-epoll) cmd=("$proxy_bin" --workers 2 --config "$tmp/routes.json" --event-loop epoll) ;;
    sockmesh-epoll-passthrough) cmd=("$proxy_bin" --workers 2 --event-loop epoll) ;;
    before | before-passthrough)
      [ -x "$before_bin" ] || die "sidecar $1 needs SM_PROXY_BENCH_BEFORE"
      cmd=("$before_bin" --workers 2)
      [ "$1" = before ] && cmd+=(--config "$tmp/routes.json")
      ;;
    haproxy) cmd=(haproxy -db -f "$tmp/haproxy.cfg") ;;
    nginx) cmd=(nginx -e "$tmp/sidecar/error.log" -p "$tmp/sidecar" -c "$tmp/nginx.conf") ;;
    *) die "unknown sidecar $1" ;;
  esac
  # The listeners use SO_REUSEPORT: a leftover sidecar would silently share the port. A
  # sidecar that just exited may hold it a moment longer (io_uring releases its files from
  # a kernel worker after the exit).
  local _
  for _ in $(seq 30); do
    [ -n "$(ip netns exec "$app" ss -Htln '( sport = :15001 )')" ] || break
    sleep 0.1
  done
  [ -z "$(ip netns exec "$app" ss -Htln '( sport = :15001 )')" ] || die "port 15001 still taken"
  app_cmd "$2" "$proxy_uid" "${cmd[@]}"
  "${cmd[@]}" >>"$out/logs/$1.log" 2>&1 &
  sidecar_pid=$!
  started+=("$sidecar_pid")
}

# The response proves who answered: our `server: sockmesh`, the x-sidecar header the
# HAProxy and nginx configs add, and for the baseline the backend's own `server: nginx`.
verify() {  # NAME: waits up to 5 s for the sidecar, then checks one response
  local name=$1 uid=$client_uid want head
  case $name in
    none) uid=$proxy_uid want='^server: nginx/' ;;
    sockmesh* | before*) want='^server: sockmesh$' ;;
    haproxy | nginx) want="^x-sidecar: $name\$" ;;
  esac
  for _ in $(seq 50); do
    head=$(in_app - "$uid" "$py" "$tmp/conns.py" probe "$url" 2>&1) && break
    [ -z "$sidecar_pid" ] || kill -0 "$sidecar_pid" 2>/dev/null ||
      die "$name exited at startup: $(tail -5 "$out/logs/$name.log")"
    sleep 0.1
  done
  grep -q "$want" <<<"$head" || die "$name: response does not show it went through: $head"
  if [ "$name" = none ] && grep -qE '^(x-sidecar|server: sockmesh)' <<<"$head"; then
    die "baseline went through a sidecar: $head"
  fi
  case $name in  # routed means a virtual host matched, not the original-destination fallback
    sockmesh* | before*)
      local pass stats
      stats=$(in_app - 0 "$py" "$tmp/conns.py" get http://127.0.0.1:15000/stats)
      pass=$(awk '$1 == "listener.outbound.downstream_rq_passthrough:" {print $2}' <<<"$stats")
      case $name in
        sockmesh | sockmesh-epoll | before) [ "$pass" = 0 ] || die "$name: not routed ($pass passthrough)" ;;
        *) [ "${pass:-0}" != 0 ] || die "$name: no passthrough" ;;
      esac
      case $name in  # the event loop each one is meant to run (older builds do not say)
        sockmesh-epoll*) grep -qx 'server.event_loop.epoll: 1' <<<"$stats" || die "$name: not on epoll" ;;
        sockmesh*) grep -qx 'server.event_loop.uring: 1' <<<"$stats" || die "$name: not on io_uring" ;;
      esac
      ;;
  esac
}

measure_memory() {  # NAME: RSS idle and holding $hold_n keep-alive connections
  local name=$1 tree log=$out/logs/hold.$1.log hpid est cmd
  mapfile -t tree < <(tree_pids "$sidecar_pid")
  echo -e "$name\tidle\t0\t$(memory_kb "${tree[@]}" | tr ' ' '\t')" >>"$out/memory.tsv"
  app_cmd - "$client_uid" "$py" "$tmp/conns.py" hold "$url" "$hold_n"
  "${cmd[@]}" >"$log" 2>&1 &
  hpid=$!
  started+=("$hpid")
  for _ in $(seq 900); do
    grep -q '^ready' "$log" && break
    kill -0 "$hpid" 2>/dev/null || break
    sleep 0.1
  done
  if ! grep -q '^ready' "$log"; then
    echo -e "$name\theld\tFAILED: $(tail -1 "$log")" >>"$out/memory.tsv"
    stop "$hpid"
    return
  fi
  progress "$name holds $hold_n connections"
  sleep 1
  mapfile -t tree < <(tree_pids "$sidecar_pid")
  est=$(ip netns exec "$app" ss -Htn state established '( sport = :15001 )' | wc -l)
  echo -e "$name\theld\t$est\t$(memory_kb "${tree[@]}" | tr ' ' '\t')" >>"$out/memory.tsv"
  stop "$hpid"
  sleep 1  # let the sidecar see 10,000 closes before it is measured again
}

# wrk's CPU and uid in VARIANT for sidecar NAME: the baseline client is the proxy's uid,
# which the interception leaves alone.
wrk_cpu() { if [ "$1" = pinned ]; then echo 0; else echo -; fi; }
wrk_uid() { if [ "$1" = none ]; then echo "$proxy_uid"; else echo "$client_uid"; fi; }

warm_up() {  # VARIANT NAME: connections, pools and caches in place before anything counts
  in_app "$(wrk_cpu "$1")" "$(wrk_uid "$2")" wrk -t"$wrk_threads" -c64 -d2s "$url" \
    >>"$out/logs/warm-up.txt" 2>&1
}

# One cell: wrk against the sidecar while /proc counts the CPU of the sidecar, the backend,
# wrk (this shell's child) and the whole machine; what is left is other load on the host.
measure() {  # VARIANT NAME CONNS REP
  local variant=$1 name=$2 conns=$3 rep=$4 cell="$1.$2.c$3.r$4" tree=() s0 s1 b0 b1 y0 y1
  local w0 z0 z1 wpid ppid rc=0 cmd sidecar_list backend_list
  [ -z "$sidecar_pid" ] || mapfile -t tree < <(tree_pids "$sidecar_pid")
  sidecar_list=$(IFS=,; echo "${tree[*]}") backend_list=$(IFS=,; echo "${backend_tree[*]}")
  app_cmd "$(wrk_cpu "$variant")" "$(wrk_uid "$name")" \
    wrk -t"$wrk_threads" -c"$conns" -d"${secs}s" --latency "$url"
  s0=$(proc_ticks "${tree[@]}") b0=$(proc_ticks "${backend_tree[@]}") y0=$(busy_ticks)
  z0=$(sleeps "${tree[@]}")
  children_cpu
  w0=$child_ms
  "${cmd[@]}" >"$out/wrk/$cell.txt" 2>&1 &
  wpid=$!
  started+=("$wpid")
  "$py" "$here/placement.py" "$out/place/$cell.txt" \
    "sidecar=$sidecar_list" "backend=$backend_list" "wrk=$wpid" &
  ppid=$!
  started+=("$ppid")
  wait "$wpid" || rc=$?
  forget "$wpid"
  children_cpu
  s1=$(proc_ticks "${tree[@]}") b1=$(proc_ticks "${backend_tree[@]}") y1=$(busy_ticks)
  z1=$(sleeps "${tree[@]}")
  stop "$ppid"
  [ "$rc" = 0 ] || echo "wrk exited $rc" >>"$out/wrk/$cell.txt"
  printf '%s\t' "$variant" "$name" "$conns" "$rep" $((s1 - s0)) $((b1 - b0)) \
    $((child_ms - w0)) $((y1 - y0)) $((z1 - z0)) >>"$out/raw.tsv"
  cat "$out/place/$cell.txt" >>"$out/raw.tsv" 2>/dev/null || echo >>"$out/raw.tsv"
  progress "$variant $name -c$conns #$rep: $(awk '/Requests\/sec/ {print $2}' "$out/wrk/$cell.txt") req/s"
}

profile() {  # perf record sockmesh-proxy under wrk -c64; the report lands in $out
  local wpid cmd
  app_cmd - "$client_uid" wrk -t"$wrk_threads" -c64 -d8s "$url"
  "${cmd[@]}" >"$out/logs/perf-wrk.txt" 2>&1 &
  wpid=$!
  started+=("$wpid")
  sleep 1
  perf record -q -g -p "$sidecar_pid" -o "$out/perf.data" -- sleep 5 >/dev/null 2>&1 || true
  wait "$wpid" || true
  forget "$wpid"
  perf report -i "$out/perf.data" --stdio --no-children --percent-limit 0.7 \
    >"$out/perf-report.txt" 2>/dev/null || true
  perf report -i "$out/perf.data" --stdio --no-children --sort dso,sym -g none \
    --percent-limit 0.5 >"$out/perf-flat.txt" 2>/dev/null || true
}

{
  echo -e "variant\tsidecar\tconns\trep\tsidecar_ticks\tbackend_ticks\twrk_ms\tbusy_ticks\tsidecar_sleeps\tplacement"
} >"$out/raw.tsv"
echo -e "sidecar\tstate\testablished\trss_kb\tpss_kb" >"$out/memory.tsv"
# Other work on the host skews every figure: meta.txt says how busy it was before we started.
y0=$(busy_ticks)
sleep 1
cat >"$out/meta.txt" <<EOF
kernel=$(uname -r)
cpus=$(nproc)
clk_tck=$(getconf CLK_TCK)
seconds=$secs
reps=$reps
conns=$conns_list
wrk_threads=$wrk_threads
hold=$hold_n
haproxy=$(haproxy -v | head -1)
nginx=$(nginx -v 2>&1)
wrk=$(wrk -v 2>&1 | head -1)
proxy=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo ?)$(
  [ -z "$(git -C "$repo" status --porcelain -- userspace 2>/dev/null)" ] || echo "+local changes")
proxy_built=$(date -u -r "$build/bin/sockmesh-proxy" +%FT%TZ)
proxy_sha256=$(sha256sum "$proxy_bin" | cut -c1-12)
before=${before_src:+$before_src (sha256 $(sha256sum "$before_bin" | cut -c1-12))}
busy_before_pct=$(( ($(busy_ticks) - y0) * 100 / ($(getconf CLK_TCK) * $(nproc)) ))
EOF

echo "sidecar bench: wrk -t$wrk_threads -c{${conns_list// /,}} -d${secs}s --latency $url," \
  "$reps reps per cell, variants: $variants; raw results in ${out#"$repo"/}"
# Repetitions go round all sidecars (every other one in reverse order), so load that drifts
# during the run (other work on the host) falls on every sidecar alike.
first_variant=${variants%% *}
read -ra forward <<<"$sidecars"
mapfile -t reversed < <(printf '%s\n' "${forward[@]}" | tac)
for variant in $variants; do
  sidecar_cpu=-
  [ "$variant" = pinned ] && sidecar_cpu=1
  for rep in $(seq "$reps"); do
    order=("${forward[@]}")
    [ $((rep % 2)) = 0 ] && order=("${reversed[@]}")
    for name in "${order[@]}"; do
      first=0
      [ "$variant" = "$first_variant" ] && [ "$rep" = 1 ] && [ "$name" != none ] && first=1
      start_sidecar "$name" "$sidecar_cpu"
      verify "$name"
      if [ "$first" = 1 ]; then
        measure_memory "$name"
        verify "$name"
      fi
      warm_up "$variant" "$name"
      for conns in $conns_list; do measure "$variant" "$name" "$conns" "$rep"; done
      if [ "$first" = 1 ]; then
        mapfile -t tree < <(tree_pids "$sidecar_pid")
        echo -e "$name\tafter-load\t0\t$(memory_kb "${tree[@]}" | tr ' ' '\t')" >>"$out/memory.tsv"
        if [ "$name" = sockmesh ] && [ "$do_perf" = 1 ] && command -v perf >/dev/null; then
          profile
        fi
      fi
      [ -n "$sidecar_pid" ] || continue
      case $name in
        sockmesh* | before*) in_app - 0 "$py" "$tmp/conns.py" get http://127.0.0.1:15000/stats \
          >"$out/logs/$name.$variant.r$rep.stats.txt" 2>&1 || true ;;
      esac
      kill -0 "$sidecar_pid" 2>/dev/null ||
        echo "$name ($variant): DIED during the run, see logs/$name.log" >>"$out/events.txt"
      stop "$sidecar_pid"
    done
  done
done

"$py" "$here/report.py" "$out" | tee "$out/report.txt"
