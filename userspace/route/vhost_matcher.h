// Virtual host selection by Host/:authority, as Envoy's RouteMatcher::findVirtualHost: exact
// domain first, then suffix wildcards ("*.consul", longest first), then prefix wildcards
// ("reviews.*", longest first), then "*". Built once per snapshot; lookups never allocate.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "route/route_config.h"

namespace sm::route {

// Host names compare case-insensitively. The port is part of the host as received, which is
// Envoy's default (no strip_matching_host_port, strip_any_host_port or
// ignore_port_in_host_matching): Host "reviews:9080" matches domain "reviews:9080" but not
// "reviews", and suffix wildcards never match a Host that carries a port. That is why a
// service's virtual host lists every name both with and without its port. A wildcard stands
// for at least one character: "*.consul" does not match ".consul".
class VhostMatcher {
 public:
  // `vhosts` must have passed validate_route_config (domains well-formed and unique).
  explicit VhostMatcher(const std::vector<VirtualHostConfig>& vhosts);

  // The index of the matching virtual host, or nullopt: no virtual host claims this host,
  // and the proxy passes the connection through to its original destination.
  std::optional<uint32_t> find(std::string_view host) const;

 private:
  struct CaseInsensitiveHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const;
  };
  struct CaseInsensitiveEqual {
    using is_transparent = void;
    bool operator()(std::string_view a, std::string_view b) const;
  };
  using DomainMap =
      std::unordered_map<std::string, uint32_t, CaseInsensitiveHash, CaseInsensitiveEqual>;
  // All wildcard domains whose fixed part has one length: a lookup cuts the host once per
  // length, longest first, instead of trying every wildcard.
  struct WildcardGroup {
    size_t length;
    DomainMap fixed_parts;
  };

  static std::optional<uint32_t> find_wildcard(const std::vector<WildcardGroup>& groups,
                                               std::string_view host, bool suffix);
  static void add_wildcard(std::vector<WildcardGroup>& groups, std::string fixed, uint32_t vhost);

  DomainMap exact_;
  std::vector<WildcardGroup> suffixes_;  // "*.foo.com": fixed part ".foo.com"
  std::vector<WildcardGroup> prefixes_;  // "foo.*": fixed part "foo."
  std::optional<uint32_t> any_;          // "*"
};

}  // namespace sm::route
