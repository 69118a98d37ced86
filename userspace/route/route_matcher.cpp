// Route matching; see route_matcher.h.
#include "route/route_matcher.h"

#include <algorithm>

#include "route/ascii_case.h"

namespace sm::route {
namespace {

// The values of every header called `name`, read as Envoy reads them: joined with ",".
// Compared in place, piece by piece, so a repeated header costs no allocation.
class JoinedValue {
 public:
  JoinedValue(std::span<const http::Header> all, std::string_view lname) : all_(all), name_(lname) {
    for (const http::Header& h : all_) {
      if (!http::ascii::iequals(h.name, name_)) continue;
      size_ += (count_ ? 1 : 0) + h.value.size();
      if (count_++ == 0) first_ = h.value;
    }
  }
  // Used for the pseudo-headers, which occur at most once.
  explicit JoinedValue(std::string_view single)
      : first_(single), count_(single.empty() ? 0 : 1), size_(single.size()) {}

  bool present() const { return count_ > 0; }
  size_t size() const { return size_; }
  // The joined value as one string (regex matching needs it contiguous).
  std::string joined() const {
    if (count_ == 1) return std::string(first_);
    std::string out;
    out.reserve(size_);
    bool first = true;
    for (const http::Header& h : all_) {
      if (!http::ascii::iequals(h.name, name_)) continue;
      if (!first) out += ',';
      first = false;
      out.append(h.value);
    }
    return out;
  }

  // Whether the joined value holds `pat` at offset `pos`.
  bool equal_at(size_t pos, std::string_view pat) const {
    if (pos + pat.size() > size_) return false;
    if (count_ == 1) return first_.substr(pos, pat.size()) == pat;
    size_t offset = 0;   // where the current piece starts in the joined value
    size_t matched = 0;  // how much of pat is confirmed
    bool first = true;
    for (const http::Header& h : all_) {
      if (!http::ascii::iequals(h.name, name_)) continue;
      if (!first && !piece(",", offset, pos, pat, matched)) return false;
      first = false;
      if (!piece(h.value, offset, pos, pat, matched)) return false;
      if (matched == pat.size()) return true;
    }
    return matched == pat.size();
  }

 private:
  // Compares the part of `text` (at `offset` in the joined value) that overlaps the unmatched
  // rest of the window [pos, pos + pat.size()), and moves past it.
  static bool piece(std::string_view text, size_t& offset, size_t pos, std::string_view pat,
                    size_t& matched) {
    const size_t start = offset;
    offset += text.size();
    const size_t lo = std::max(start, pos + matched);
    const size_t hi = std::min(offset, pos + pat.size());
    if (lo >= hi) return true;
    if (text.substr(lo - start, hi - lo) != pat.substr(matched, hi - lo)) return false;
    matched += hi - lo;
    return true;
  }

  std::span<const http::Header> all_;
  std::string_view name_;
  std::string_view first_;
  size_t count_ = 0;
  size_t size_ = 0;
};

}  // namespace

RouteMatcher::RouteMatcher(const RouteMatchConfig& config) : config_(&config) {
  // validate_route_config compiled every regex already, so these cannot fail here.
  if (config.kind == RouteMatchConfig::PathKind::regex)
    path_re_ = *compile_regex(config.value, !config.case_sensitive);
  headers_.reserve(config.headers.size());
  for (const HeaderMatcherConfig& h : config.headers) {
    Header compiled{lower_copy(h.name), Source::header, &h, std::nullopt};
    if (h.kind == HeaderMatcherConfig::Kind::regex) compiled.re = *compile_regex(h.value, false);
    if (compiled.lname == ":authority") compiled.source = Source::authority;
    if (compiled.lname == ":path") compiled.source = Source::path;
    if (compiled.lname == ":method") compiled.source = Source::method;
    headers_.push_back(std::move(compiled));
  }
}

bool RouteMatcher::matches(const RequestView& req) const {
  if (!path_matches(req.path)) return false;
  return std::all_of(headers_.begin(), headers_.end(),
                     [&](const Header& h) { return header_matches(h, req); });
}

bool RouteMatcher::path_matches(std::string_view path) const {
  path = path.substr(0, path.find_first_of("?#"));
  const std::string& want = config_->value;
  if (path_re_) return std::regex_match(path.begin(), path.end(), *path_re_);
  if (config_->kind == RouteMatchConfig::PathKind::prefix)
    return config_->case_sensitive ? path.starts_with(want) : istarts_with(path, want);
  return config_->case_sensitive ? path == want : http::ascii::iequals(path, want);
}

bool RouteMatcher::header_matches(const Header& h, const RequestView& req) {
  const JoinedValue value = [&] {
    switch (h.source) {
      case Source::authority:
        return JoinedValue(req.authority);
      case Source::path:
        return JoinedValue(req.path);
      case Source::method:
        return JoinedValue(req.method);
      case Source::header:
        break;
    }
    return JoinedValue(req.headers, h.lname);
  }();
  const HeaderMatcherConfig& m = *h.config;
  using Kind = HeaderMatcherConfig::Kind;
  if (!value.present()) {
    // Envoy: invert_match does not turn "absent" into a match for value matchers.
    if (m.kind != Kind::present) return false;
    return m.invert ? m.present : !m.present;
  }
  bool match = false;
  switch (m.kind) {
    case Kind::exact:
      match = m.value.empty() || (value.size() == m.value.size() && value.equal_at(0, m.value));
      break;
    case Kind::prefix:
      match = value.equal_at(0, m.value);
      break;
    case Kind::suffix:
      match =
          value.size() >= m.value.size() && value.equal_at(value.size() - m.value.size(), m.value);
      break;
    case Kind::regex: {
      const std::string v = value.joined();
      match = std::regex_match(v, *h.re);
      break;
    }
    case Kind::present:
      match = m.present;
      break;
  }
  return match != m.invert;
}

}  // namespace sm::route
