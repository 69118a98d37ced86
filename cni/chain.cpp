// Conflist chaining; see chain.h.
#include "chain.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "pins.h"

namespace sm::cni {
namespace {

bool ours(const Json& plugin) {
  return plugin.is_object() && plugin.value("type", "") == kPluginType;
}

bool has_suffix(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Result<std::string> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return errno_error("read " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Written beside the target and renamed over it: a runtime reading the directory never
// sees half a file, and a running binary is replaced without ETXTBSY.
Status write_atomically(const std::string& path, const std::string& data, mode_t mode) {
  std::string tmp = path + ".sm-tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) return errno_error("write " + tmp);
    f << data;
    f.flush();
    if (!f) return errno_error("write " + tmp);
  }
  if (::chmod(tmp.c_str(), mode) != 0) return errno_error("chmod " + tmp);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return errno_error("rename " + tmp);
  return {};
}

Result<Json> read_json(const std::string& path) {
  auto text = read_file(path);
  if (!text) return text.error();
  Json j = Json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return plain_error(path + ": not a JSON object");
  return j;
}

}  // namespace

bool chain_into(Json& conflist, const Json& entry) {
  Json& plugins = conflist["plugins"];
  if (!plugins.is_array()) plugins = Json::array();
  for (auto& p : plugins) {
    if (!ours(p)) continue;
    if (p == entry) return false;
    p = entry;
    return true;
  }
  plugins.push_back(entry);
  return true;
}

bool unchain(Json& conflist) {
  if (!conflist.contains("plugins") || !conflist["plugins"].is_array()) return false;
  Json& plugins = conflist["plugins"];
  Json kept = Json::array();
  for (const auto& p : plugins)
    if (!ours(p)) kept.push_back(p);
  bool changed = kept.size() != plugins.size();
  plugins = std::move(kept);
  return changed;
}

Json conf_to_conflist(const Json& conf) {
  Json list;
  list["cniVersion"] = conf.value("cniVersion", kSpecVersion);
  list["name"] = conf.value("name", "");
  Json plugin = conf;
  plugin.erase("cniVersion");
  plugin.erase("name");
  list["plugins"] = Json::array({plugin});
  return list;
}

std::string first_config(const std::string& conf_dir) {
  for (const auto& name : list_dir(conf_dir))  // sorted by name
    if (has_suffix(name, ".conflist") || has_suffix(name, ".conf") || has_suffix(name, ".json"))
      return conf_dir + "/" + name;
  return "";
}

Status install_chain(const ChainSpec& spec, std::vector<std::string>& events) {
  auto binary = read_file(spec.plugin_binary);
  if (!binary) return binary.error();
  std::string target = spec.bin_dir + "/" + kPluginType;
  auto installed = read_file(target);
  if (!installed || *installed != *binary) {
    if (Status s = write_atomically(target, *binary, 0755); !s) return s;
    events.push_back("installed " + target);
  }

  std::string path = first_config(spec.conf_dir);
  if (path.empty())
    return plain_error("no CNI network config in " + spec.conf_dir +
                       " yet: sockmesh-cni is chained once the network plugin writes one");
  auto conf = read_json(path);
  if (!conf) return conf.error();
  std::string out_path = path;
  if (!conf->contains("plugins")) {  // a single-plugin .conf
    *conf = conf_to_conflist(*conf);
    out_path = path.substr(0, path.rfind('.')) + ".conflist";
  }
  if (!chain_into(*conf, spec.entry) && out_path == path) return {};
  if (Status s = write_atomically(out_path, conf->dump(2) + "\n", 0644); !s) return s;
  if (out_path != path && ::unlink(path.c_str()) != 0) return errno_error("unlink " + path);
  events.push_back("chained sockmesh-cni into " + out_path);
  return {};
}

Status uninstall_chain(const std::string& bin_dir, const std::string& conf_dir,
                       std::vector<std::string>& events) {
  for (const auto& name : list_dir(conf_dir)) {
    if (!has_suffix(name, ".conflist")) continue;
    std::string path = conf_dir + "/" + name;
    auto conf = read_json(path);
    if (!conf || !unchain(*conf)) continue;
    if (Status s = write_atomically(path, conf->dump(2) + "\n", 0644); !s) return s;
    events.push_back("removed sockmesh-cni from " + path);
  }
  std::string target = bin_dir + "/" + kPluginType;
  if (::unlink(target.c_str()) == 0)
    events.push_back("removed " + target);
  else if (errno != ENOENT)
    return errno_error("unlink " + target);
  return {};
}

}  // namespace sm::cni
