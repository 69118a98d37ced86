// Skeleton loading; see skeleton.h.
#include "skeleton.h"

#include <cstdarg>
#include <cstdio>
#include <mutex>

#include "sockmesh/log.h"

namespace sm::bpf {

static int libbpf_log(enum libbpf_print_level level, const char* fmt, va_list ap) {
  if (level == LIBBPF_DEBUG && log::threshold() > log::Level::debug) return 0;
  char buf[4096];
  int n = std::vsnprintf(buf, sizeof buf, fmt, ap);
  if (n > 0 && buf[std::min<size_t>(static_cast<size_t>(n), sizeof buf - 1) - 1] == '\n')
    buf[std::min<size_t>(static_cast<size_t>(n), sizeof buf - 1) - 1] = 0;
  log::write(level == LIBBPF_WARN ? log::Level::warn : log::Level::debug, "libbpf: %s", buf);
  return n;
}

void route_libbpf_logs() {
  static std::once_flag once;
  std::call_once(once, [] { libbpf_set_print(libbpf_log); });
}

Result<Skeleton> load_skeleton(const std::string& maps_dir, LoadFor what) {
  route_libbpf_logs();
  LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = maps_dir.c_str());
  Skeleton skel(sockmesh_bpf__open_opts(&opts));
  if (!skel) return errno_error("open BPF object sockmesh.bpf.o");
  bpf_object* obj = skel->obj;
  bpf_program* prog;
  bpf_object__for_each_program(prog, obj) {
    LoadFor::Kind owner = prog == skel->progs.sm_inbound     ? LoadFor::inbound
                          : prog == skel->progs.sm_probe_msg ? LoadFor::probe
                                                             : LoadFor::install;
    bpf_program__set_autoload(prog, owner == what.kind);
  }
  if (what.kind == LoadFor::inbound) skel->rodata->inbound_netns_cookie = what.netns_cookie;
  if (int err = sockmesh_bpf__load(skel.get()); err != 0)
    return errno_error("load BPF programs (verifier log above)", err);
  return skel;
}

}  // namespace sm::bpf
