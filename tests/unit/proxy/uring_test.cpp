// user_data packing (userspace/proxy/uring.h): a late completion must be recognizable.
#include "proxy/uring.h"

#include <gtest/gtest.h>

namespace sm::proxy {
namespace {

TEST(UserData, RoundTripsAllFields) {
  for (Op op : {Op::accept, Op::recv, Op::send, Op::connect, Op::cancel}) {
    UserData u{op, 0xabcdef, 0xfedcba98};
    UserData back = UserData::unpack(u.pack());
    EXPECT_EQ(back.op, op);
    EXPECT_EQ(back.slot, 0xabcdefu);
    EXPECT_EQ(back.gen, 0xfedcba98u);
  }
}

TEST(UserData, GenerationSeparatesReusedSlots) {
  EXPECT_NE((UserData{Op::recv, 5, 1}.pack()), (UserData{Op::recv, 5, 2}.pack()));
  EXPECT_NE((UserData{Op::recv, 5, 1}.pack()), (UserData{Op::send, 5, 1}.pack()));
}

TEST(BufferRing, RegistersAndHandsOutBuffers) {
  Ring ring;
  ASSERT_TRUE(ring.init(8));
  BufferRing bufs;
  Status s = bufs.init(ring, 3, 16, 4096);
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(bufs.available(), 16u);
  EXPECT_EQ(bufs.data(1) - bufs.data(0), 4096);
  bufs.taken();
  EXPECT_EQ(bufs.available(), 15u);
  bufs.give_back(0);
  bufs.publish();
  EXPECT_EQ(bufs.available(), 16u);
  BufferRing bad;
  EXPECT_FALSE(bad.init(ring, 4, 15, 4096));  // not a power of two
}

}  // namespace
}  // namespace sm::proxy
