// Response reading; see http_response.h.
#include "consul/http_response.h"

#include <charconv>

#include "http/ascii.h"

namespace sm::consul {

std::string_view HttpResponse::header(std::string_view lname) const {
  for (const auto& [name, value] : headers)
    if (name == lname) return value;
  return {};
}

void ResponseReader::reset() {
  state_ = State::need_more;
  parser_.reset();
  have_head_ = false;
  kind_ = http::BodyKind::none;
  length_ = 0;
  raw_.clear();
  pos_ = 0;
  last_chunk_ = false;
  body_done_ = false;
  response_ = {};
  error_.clear();
}

ResponseReader::State ResponseReader::fail(std::string why) {
  error_ = std::move(why);
  return state_ = State::error;
}

ResponseReader::State ResponseReader::feed(std::string_view bytes) {
  if (state_ == State::error) return state_;
  if (state_ == State::complete) return fail("bytes after a complete response");
  raw_.append(bytes);
  if (!have_head_) {
    http::ParseResult r = parser_.parse(raw_);
    if (r.failed()) return fail("invalid response head: " + std::string(r.error.reason));
    if (r.need_more()) return state_;
    const http::ResponseHead& h = parser_.head();
    response_.status = h.status;
    response_.keep_alive = h.keep_alive;
    for (const http::Header& f : h.headers) {
      std::string name(f.name);
      for (char& c : name) c = http::ascii::lower(c);
      response_.headers.emplace_back(std::move(name), std::string(f.value));
    }
    if (h.interim()) return fail("unexpected interim response");
    kind_ = h.body.kind;
    length_ = h.body.length;
    if (kind_ == http::BodyKind::tunnel) return fail("unexpected protocol switch");
    if (kind_ == http::BodyKind::length && length_ > max_body_) return fail("response too large");
    pos_ = r.consumed;
    have_head_ = true;
  }
  return parse_body();
}

ResponseReader::State ResponseReader::parse_body() {
  switch (kind_) {
    case http::BodyKind::none:
      if (pos_ != raw_.size()) return fail("bytes after a complete response");
      return state_ = State::complete;
    case http::BodyKind::length:
      if (raw_.size() - pos_ < length_) return state_;
      if (raw_.size() - pos_ > length_) return fail("bytes after a complete response");
      response_.body.assign(raw_, pos_, length_);
      return state_ = State::complete;
    case http::BodyKind::chunked:
      if (!dechunk()) return fail("invalid chunked body");
      if (response_.body.size() > max_body_) return fail("response too large");
      if (body_done_) {
        if (pos_ != raw_.size()) return fail("bytes after a complete response");
        return state_ = State::complete;
      }
      return state_;
    case http::BodyKind::until_close:
      if (raw_.size() - pos_ > max_body_) return fail("response too large");
      return state_;
    case http::BodyKind::tunnel:
      break;
  }
  return fail("unexpected body framing");
}

bool ResponseReader::dechunk() {
  while (!body_done_) {
    size_t eol = raw_.find("\r\n", pos_);
    if (eol == std::string::npos) return raw_.size() - pos_ < 4096;
    if (last_chunk_) {
      // The trailer section: field lines (ignored) up to an empty line.
      if (eol == pos_) body_done_ = true;
      pos_ = eol + 2;
      continue;
    }
    std::string_view line(raw_.data() + pos_, eol - pos_);
    line = line.substr(0, line.find(';'));  // chunk extensions are ignored
    uint64_t size = 0;
    auto [p, ec] = std::from_chars(line.data(), line.data() + line.size(), size, 16);
    if (ec != std::errc() || p == line.data() || p != line.data() + line.size()) return false;
    if (size == 0) {
      last_chunk_ = true;
      pos_ = eol + 2;
      continue;
    }
    if (size > max_body_) return false;
    if (raw_.size() < eol + 2 + size + 2) return true;
    if (raw_.compare(eol + 2 + size, 2, "\r\n") != 0) return false;
    response_.body.append(raw_, eol + 2, size);
    pos_ = eol + 2 + size + 2;
  }
  return true;
}

ResponseReader::State ResponseReader::on_close() {
  if (state_ != State::need_more) return state_;
  if (have_head_ && kind_ == http::BodyKind::until_close) {
    response_.body.assign(raw_, pos_);
    response_.keep_alive = false;
    return state_ = State::complete;
  }
  return fail(have_head_ ? "connection closed mid-body" : "connection closed before a response");
}

}  // namespace sm::consul
