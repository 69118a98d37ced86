// Protocol sniffing; see sniff.h.
#include "sniff.h"

namespace sm::proxy {

Sniff sniff(std::string_view b) {
  constexpr size_t kMaxMethod = 20;
  constexpr std::string_view kH2Preface = "PRI * HTTP/2.0";
  for (size_t i = 0; i < b.size() && i <= kMaxMethod; ++i) {
    char c = b[i];
    if (c == ' ') {
      if (i == 0) return Sniff::opaque;
      if (b.substr(0, i) == "PRI") {  // maybe the HTTP/2 preface
        size_t n = std::min(b.size(), kH2Preface.size());
        if (b.substr(0, n) != kH2Preface.substr(0, n)) return Sniff::http1;
        return n == kH2Preface.size() ? Sniff::opaque : Sniff::need_more;
      }
      return Sniff::http1;
    }
    // Methods in practice are upper-case tokens; anything else is not HTTP/1.x.
    if (!(c >= 'A' && c <= 'Z') && c != '-' && c != '_') return Sniff::opaque;
  }
  return b.size() > kMaxMethod ? Sniff::opaque : Sniff::need_more;
}

}  // namespace sm::proxy
