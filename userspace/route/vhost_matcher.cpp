// Domain index for virtual host selection; see vhost_matcher.h.
#include "route/vhost_matcher.h"

#include <algorithm>

#include "route/ascii_case.h"

namespace sm::route {

size_t VhostMatcher::CaseInsensitiveHash::operator()(std::string_view s) const {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a over the lowercased bytes
  for (char c : s) {
    h ^= static_cast<unsigned char>(http::ascii::lower(c));
    h *= 0x100000001b3ull;
  }
  return static_cast<size_t>(h);
}

bool VhostMatcher::CaseInsensitiveEqual::operator()(std::string_view a, std::string_view b) const {
  return http::ascii::iequals(a, b);
}

VhostMatcher::VhostMatcher(const std::vector<VirtualHostConfig>& vhosts) {
  for (uint32_t v = 0; v < vhosts.size(); ++v) {
    for (const std::string& domain : vhosts[v].domains) {
      if (domain == "*") {
        any_ = v;
      } else if (domain.front() == '*') {
        add_wildcard(suffixes_, lower_copy(domain.substr(1)), v);
      } else if (domain.back() == '*') {
        add_wildcard(prefixes_, lower_copy(domain.substr(0, domain.size() - 1)), v);
      } else {
        exact_.emplace(lower_copy(domain), v);
      }
    }
  }
  auto longest_first = [](const WildcardGroup& a, const WildcardGroup& b) {
    return a.length > b.length;
  };
  std::sort(suffixes_.begin(), suffixes_.end(), longest_first);
  std::sort(prefixes_.begin(), prefixes_.end(), longest_first);
}

void VhostMatcher::add_wildcard(std::vector<WildcardGroup>& groups, std::string fixed,
                                uint32_t vhost) {
  auto it = std::find_if(groups.begin(), groups.end(),
                         [&](const WildcardGroup& g) { return g.length == fixed.size(); });
  if (it == groups.end()) it = groups.insert(groups.end(), WildcardGroup{fixed.size(), {}});
  it->fixed_parts.emplace(std::move(fixed), vhost);
}

std::optional<uint32_t> VhostMatcher::find_wildcard(const std::vector<WildcardGroup>& groups,
                                                    std::string_view host, bool suffix) {
  for (const WildcardGroup& g : groups) {
    // Strictly shorter: the '*' must stand for at least one character.
    if (g.length >= host.size()) continue;
    std::string_view part = suffix ? host.substr(host.size() - g.length) : host.substr(0, g.length);
    if (auto it = g.fixed_parts.find(part); it != g.fixed_parts.end()) return it->second;
  }
  return std::nullopt;
}

std::optional<uint32_t> VhostMatcher::find(std::string_view host) const {
  if (auto it = exact_.find(host); it != exact_.end()) return it->second;
  if (auto v = find_wildcard(suffixes_, host, true)) return v;
  if (auto v = find_wildcard(prefixes_, host, false)) return v;
  return any_;
}

}  // namespace sm::route
