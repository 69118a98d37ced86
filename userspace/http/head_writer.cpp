// One pass over the parsed fields: each is kept or dropped, then the edits are appended.
#include "http/head_writer.h"

#include <array>
#include <cstring>

#include "http/ascii.h"
#include "http/list_reader.h"

namespace sm::http {

namespace {

// Copies while there is room and counts always, so the caller learns the size it needs.
class Sink {
 public:
  explicit Sink(std::span<char> out) : out_(out) {}
  void put(std::string_view s) {
    // An empty view may have a null data(): memcpy must not see it, even for 0 bytes.
    if (!s.empty() && size_ + s.size() <= out_.size()) {
      std::memcpy(out_.data() + size_, s.data(), s.size());
    }
    size_ += s.size();
  }
  void field(std::string_view name, std::string_view value) {
    put(name);
    put(": ");
    put(value);
    put("\r\n");
  }
  size_t size() const { return size_; }

 private:
  std::span<char> out_;
  size_t size_ = 0;
};

// Decides, per field, whether it is forwarded. The Connection lines are collected once so
// that the check per field does not walk the whole head again.
class FieldFilter {
 public:
  FieldFilter(const HeaderList& headers, const HeadEdits& edits)
      : headers_(headers), edits_(edits) {
    if (!edits.remove_hop_by_hop) return;
    for (const Header& h : headers) {
      if (!ascii::iequals(h.name, "connection")) continue;
      if (connection_count_ < connection_.size()) connection_[connection_count_] = h.value;
      ++connection_count_;
    }
  }

  bool keep(const Header& h) const {
    for (std::string_view name : edits_.remove) {
      if (ascii::iequals(h.name, name)) return false;
    }
    for (const Header& s : edits_.set) {
      if (ascii::iequals(h.name, s.name)) return false;
    }
    if (!edits_.remove_hop_by_hop) return true;
    static constexpr std::array<std::string_view, 5> kHopByHop = {
        "connection", "keep-alive", "proxy-connection", "te", "upgrade"};
    for (std::string_view name : kHopByHop) {
      if (ascii::iequals(h.name, name)) return false;
    }
    if (connection_count_ == 0 || ascii::iequals(h.name, "content-length") ||
        ascii::iequals(h.name, "transfer-encoding") || ascii::iequals(h.name, "host")) {
      return true;
    }
    if (connection_count_ > connection_.size()) {
      return !headers_.has_token("connection", h.name);  // pathological: many lines
    }
    for (size_t i = 0; i < connection_count_; ++i) {
      if (list_contains(connection_[i], h.name)) return false;
    }
    return true;
  }

 private:
  const HeaderList& headers_;
  const HeadEdits& edits_;
  std::array<std::string_view, 4> connection_{};
  size_t connection_count_ = 0;
};

size_t write_fields(Sink& sink, const HeaderList& headers, const HeadEdits& edits) {
  const FieldFilter filter(headers, edits);
  for (const Header& h : headers) {
    if (filter.keep(h)) sink.field(h.name, h.value);
  }
  for (const Header& h : edits.set) sink.field(h.name, h.value);
  for (const Header& h : edits.add) sink.field(h.name, h.value);
  sink.put("\r\n");
  return sink.size();
}

}  // namespace

size_t write_head(const RequestHead& head, const HeadEdits& edits, std::span<char> out) {
  Sink sink(out);
  sink.put(head.method_text);
  sink.put(" ");
  sink.put(edits.target.empty() ? head.target : edits.target);
  sink.put(" ");
  sink.put(head.version);
  sink.put("\r\n");
  return write_fields(sink, head.headers, edits);
}

size_t write_head(const ResponseHead& head, const HeadEdits& edits, std::span<char> out) {
  Sink sink(out);
  const std::array<char, 5> code = {' ', static_cast<char>('0' + head.status / 100),
                                    static_cast<char>('0' + head.status / 10 % 10),
                                    static_cast<char>('0' + head.status % 10), ' '};
  sink.put(head.version);
  sink.put(std::string_view(code.data(), code.size()));
  sink.put(head.reason);
  sink.put("\r\n");
  return write_fields(sink, head.headers, edits);
}

}  // namespace sm::http
