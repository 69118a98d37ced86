// Shared; see shared.h.
#include "proxy/shared.h"

#include <sys/resource.h>

namespace sm::proxy {
namespace {

// Without --max-connections: what the descriptor limit allows, less a reserve for the
// listeners, the admin API and upstream connections, so that accept() itself rarely meets
// EMFILE (when it does, the listener rests: see UringLoop).
uint64_t max_connections_for(const Options& o) {
  if (o.max_connections) return o.max_connections;
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return 0;
  constexpr uint64_t kReserve = 64;
  return rl.rlim_cur > 2 * kReserve ? rl.rlim_cur - kReserve : rl.rlim_cur / 2;
}

}  // namespace

Shared::Shared(const Options& o) : opts(o), max_connections(max_connections_for(o)) {}

}  // namespace sm::proxy
