// Status collection and rendering; see status.h.
#include "status.h"

#include <dirent.h>
#include <sys/stat.h>

#include <cstddef>
#include <sstream>

namespace sm {
namespace {

struct StatField {
  const char* name;
  size_t offset;
};
#define SM_STAT(f)            \
  StatField {                 \
#f, offsetof(sm_stats, f) \
  }
constexpr StatField kStatFields[] = {
    SM_STAT(connect_redirected),  SM_STAT(origdst_recorded), SM_STAT(origdst_answered),
    SM_STAT(origdst_missing),     SM_STAT(inflight_full),    SM_STAT(inbound_steered),
    SM_STAT(inbound_no_listener), SM_STAT(splice_msgs),      SM_STAT(splice_bytes),
    SM_STAT(splice_miss),         SM_STAT(sock_inserted),    SM_STAT(sock_insert_fail),
    SM_STAT(sock_not_safe),       SM_STAT(sock_not_owner),   SM_STAT(origdst_v6),
    SM_STAT(fail_open),
};
#undef SM_STAT
static_assert(sizeof(kStatFields) / sizeof(kStatFields[0]) * 8 == sizeof(sm_stats),
              "every sm_stats counter has a name");

// Finds the cgroup v2 directory whose inode is `id` (depth-first, small trees).
std::string find_cgroup(const std::string& dir, uint64_t id, int depth = 0) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0 && st.st_ino == id) return dir;
  if (depth > 8) return "";
  for (const auto& name : list_dir(dir)) {
    std::string sub = dir + "/" + name;
    struct stat s2 {};
    if (::lstat(sub.c_str(), &s2) != 0 || !S_ISDIR(s2.st_mode)) continue;
    std::string hit = find_cgroup(sub, id, depth + 1);
    if (!hit.empty()) return hit;
  }
  return "";
}

const char* str_or(const char* s, const char* dflt) {
  return s ? s : dflt;
}

// libbpf 1.1 predates sockmap links (kernel 6.10); name it ourselves.
const char* link_type_name(uint32_t type) {
  if (type == bpf::kSockmapLinkType) return "sockmap";
  return str_or(libbpf_bpf_link_type_str(static_cast<bpf_link_type>(type)), "?");
}

nlohmann::json link_json(const std::string& name, const std::string& path,
                         const std::string& cg_root) {
  nlohmann::json j{{"name", name}};
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) {
    j["error"] = errno_error("open " + path).message();
    return j;
  }
  UniqueFd link(fd);
  auto li = bpf::link_info(fd);
  if (!li) {
    j["error"] = li.error().message();
    return j;
  }
  j["link_id"] = li->id;
  j["type"] = link_type_name(li->type);
  if (li->attach_type || li->type == BPF_LINK_TYPE_CGROUP)
    j["attach_type"] =
        str_or(libbpf_bpf_attach_type_str(static_cast<bpf_attach_type>(li->attach_type)), "?");
  if (li->type == BPF_LINK_TYPE_CGROUP) {
    j["cgroup_id"] = li->cgroup_id;
    j["cgroup"] = find_cgroup(cg_root, li->cgroup_id);
  } else if (li->type == BPF_LINK_TYPE_NETNS) {
    j["netns_inode"] = li->netns_ino;
    j["netns_alive"] = li->netns_ino != 0;
  } else if (li->type == bpf::kSockmapLinkType) {
    j["map_id"] = li->map_id;
  }
  auto pi = bpf::prog_info_by_id(li->prog_id);
  if (pi) {
    j["prog"] = {{"id", pi->id},
                 {"name", pi->name},
                 {"tag", pi->tag},
                 {"xlated_insns", pi->xlated_insns},
                 {"verified_insns", pi->verified_insns},
                 {"jited_bytes", pi->jited_bytes}};
  }
  return j;
}

nlohmann::json map_json(const PinLayout& pins, const std::string& name) {
  nlohmann::json j{{"name", name}};
  auto h = bpf::MapHandle::open_pinned(pins.map(name), name);
  if (!h) {
    j["error"] = h.error().message();
    return j;
  }
  auto info = bpf::map_info(h->fd());
  if (!info) {
    j["error"] = info.error().message();
    return j;
  }
  j["id"] = info->id;
  j["type"] = str_or(libbpf_bpf_map_type_str(static_cast<bpf_map_type>(info->type)), "?");
  j["max_entries"] = info->max_entries;
  if (info->type == BPF_MAP_TYPE_SK_STORAGE) {
    j["entries"] = nullptr;  // lives in the sockets; not iterable with get_next_key
  } else {
    auto n = bpf::count_entries(*h, info->key_size);
    if (n)
      j["entries"] = *n;
    else
      j["entries"] = nullptr;
  }
  return j;
}

std::string join_ports(const std::vector<uint16_t>& v) {
  std::string s;
  for (uint16_t p : v) s += (s.empty() ? "" : ",") + std::to_string(p);
  return s;
}
std::string join_cidrs(const std::vector<IpCidr>& v) {
  std::string s;
  for (const auto& c : v) s += (s.empty() ? "" : ",") + c.str();
  return s;
}

}  // namespace

std::vector<std::pair<std::string, uint64_t>> stats_fields(const sm_stats& s) {
  std::vector<std::pair<std::string, uint64_t>> out;
  const auto* base = reinterpret_cast<const unsigned char*>(&s);
  for (const auto& f : kStatFields) {
    uint64_t v;
    std::memcpy(&v, base + f.offset, sizeof v);
    out.emplace_back(f.name, v);
  }
  return out;
}

Result<nlohmann::json> collect_status(const PinLayout& pins) {
  nlohmann::json j{{"pin_dir", pins.dir}};
  auto mesh = Mesh::open(pins);
  if (!mesh) {
    j["installed"] = false;
    j["reason"] = mesh.error().message();
    return j;
  }
  j["installed"] = true;
  auto cg_root = host::cgroup2_root();
  auto cfg = mesh->config();
  if (!cfg) return cfg.error();
  j["splice"] = (cfg->flags & SM_CFG_SPLICE) != 0;
  // Whether install's probe found this kernel safe for the apps' own sockets.
  j["app_splice_safe"] = (cfg->flags & SM_CFG_APP_SPLICE_SAFE) != 0;

  j["links"] = nlohmann::json::array();
  for (const auto& name : list_dir(pins.links()))
    j["links"].push_back(link_json(name, pins.link(name), cg_root ? *cg_root : ""));
  j["maps"] = nlohmann::json::array();
  for (const auto& name : list_dir(pins.maps())) j["maps"].push_back(map_json(pins, name));

  auto wls = list_enrolled(mesh->store());
  if (!wls) return wls.error();
  j["workloads"] = nlohmann::json::array();
  for (const auto& w : *wls) {
    const auto& s = w.settings;
    j["workloads"].push_back({
        {"netns_cookie", w.netns_cookie},
        {"netns_inode", w.value.netns_ino},
        {"inbound_link",
         host::path_exists(pins.link(PinLayout::inbound_link_name(w.netns_cookie)))},
        {"outbound_port", s.outbound_port},
        {"inbound_port", s.inbound_port},
        {"proxy_uid", s.proxy_uid},
        {"proxy_gid", s.gid()},
        {"exclude_outbound_ports", s.exclude_outbound_ports},
        {"exclude_inbound_ports", s.exclude_inbound_ports},
        {"exclude_cidrs", join_cidrs(s.exclude_cidrs)},
        {"include_cidrs", join_cidrs(s.include_cidrs)},
        {"splice_app", s.splice_app},
        {"fail_open", s.fail_open},
    });
  }
  auto st = mesh->stats();
  if (!st) return st.error();
  j["counters"] = nlohmann::json::object();
  for (const auto& [name, v] : stats_fields(*st)) j["counters"][name] = v;
  return j;
}

std::string render_status_text(const nlohmann::json& j) {
  std::ostringstream o;
  if (!j.value("installed", false)) {
    o << "sockmesh: not installed at " << j["pin_dir"].get<std::string>() << "\n";
    return o.str();
  }
  o << "sockmesh installed at " << j["pin_dir"].get<std::string>() << " (splice "
    << (j["splice"].get<bool>() ? "on" : "off") << "; app sockets "
    << (j["app_splice_safe"].get<bool>() ? "spliced: this kernel is safe"
                                         : "spliced only with --splice-app")
    << ")\n";
  o << "links:\n";
  for (const auto& l : j["links"]) {
    o << "  " << l["name"].get<std::string>();
    if (l.contains("error")) {
      o << "  error: " << l["error"].get<std::string>() << "\n";
      continue;
    }
    o << "  link " << l["link_id"] << " " << l["type"].get<std::string>();
    if (l.contains("attach_type")) o << " " << l["attach_type"].get<std::string>();
    if (l.contains("cgroup")) o << " cgroup " << l["cgroup"].get<std::string>();
    if (l.contains("map_id")) o << " map " << l["map_id"];
    if (l.contains("netns_inode"))
      o << " netns " << (l["netns_alive"].get<bool>() ? l["netns_inode"].dump() : "gone");
    if (l.contains("prog"))
      o << "  prog " << l["prog"]["id"] << " " << l["prog"]["name"].get<std::string>() << " ("
        << l["prog"]["xlated_insns"] << " insns, verifier processed " << l["prog"]["verified_insns"]
        << ")";
    o << "\n";
  }
  o << "maps:\n";
  for (const auto& m : j["maps"]) {
    o << "  " << m["name"].get<std::string>();
    if (m.contains("error")) {
      o << "  error: " << m["error"].get<std::string>() << "\n";
      continue;
    }
    o << "  id " << m["id"] << " " << m["type"].get<std::string>() << " "
      << (m["entries"].is_null() ? std::string("-") : m["entries"].dump()) << "/"
      << m["max_entries"] << " entries\n";
  }
  o << "workloads: " << j["workloads"].size() << "\n";
  for (const auto& w : j["workloads"]) {
    o << "  netns cookie " << w["netns_cookie"] << " inode " << w["netns_inode"] << ": outbound "
      << w["outbound_port"] << " inbound " << w["inbound_port"] << " uid " << w["proxy_uid"]
      << " gid " << w["proxy_gid"];
    auto ports = [&](const char* key, const char* label) {
      auto v = w[key].get<std::vector<uint16_t>>();
      if (!v.empty()) o << " " << label << " " << join_ports(v);
    };
    ports("exclude_outbound_ports", "exclude-outbound-ports");
    ports("exclude_inbound_ports", "exclude-inbound-ports");
    if (!w["exclude_cidrs"].get<std::string>().empty())
      o << " exclude-cidrs " << w["exclude_cidrs"].get<std::string>();
    if (!w["include_cidrs"].get<std::string>().empty())
      o << " include-cidrs " << w["include_cidrs"].get<std::string>();
    if (w["splice_app"].get<bool>()) o << " splice-app";
    if (w["fail_open"].get<bool>()) o << " fail-open";
    if (!w["inbound_link"].get<bool>()) o << " (no inbound link)";
    o << "\n";
  }
  o << "counters:\n";
  for (const auto& [k, v] : j["counters"].items()) o << "  " << k << " " << v << "\n";
  return o.str();
}

}  // namespace sm
