// Field look-ups the router and proxy use: case-insensitive names, list-valued tokens.
#include "http/header_list.h"

#include <gtest/gtest.h>

#include <array>
#include <string>

#include "http/list_reader.h"

namespace sm::http {
namespace {

TEST(HeaderList, FindsByNameInAnyCase) {
  const std::array<Header, 4> fields = {Header{"Host", "a"}, Header{"X-B3-Sampled", "1"},
                                        Header{"connection", "keep-alive, Upgrade"},
                                        Header{"x-b3-sampled", "0"}};
  const HeaderList list(fields);
  ASSERT_NE(list.find("HOST"), nullptr);
  EXPECT_EQ(list.find("HOST")->value, "a");
  EXPECT_EQ(list.find("hos"), nullptr);
  EXPECT_EQ(list.value("x-b3-SAMPLED"), "1");  // the first one
  EXPECT_EQ(list.value("absent"), "");
  EXPECT_EQ(list.count("x-b3-sampled"), 2u);
  EXPECT_TRUE(list.has_token("Connection", "upgrade"));
  EXPECT_TRUE(list.has_token("connection", "KEEP-ALIVE"));
  EXPECT_FALSE(list.has_token("connection", "close"));
  EXPECT_FALSE(list.has_token("host", "b"));
}

TEST(ListReader, SkipsEmptyElementsAndTrims) {
  ListReader r(" ,a ,\t, b\t,,c d ,");
  std::string_view item;
  std::string joined;
  while (r.next(item)) joined += "[" + std::string(item) + "]";
  EXPECT_EQ(joined, "[a][b][c d]");
  EXPECT_TRUE(r.had_empty());
  ListReader clean("a, b");
  while (clean.next(item)) {
  }
  EXPECT_FALSE(clean.had_empty());
}

}  // namespace
}  // namespace sm::http
