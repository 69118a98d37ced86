// Install-time probe of this kernel's sockhash behaviour, to decide whether an
// application's own sockets may be spliced. A socket in a sockhash gets tcp_bpf's receive
// path; on kernels up to at least 6.18 a blocking recv() there returns EAGAIN when any
// wake-up (write space, a state change) ends its wait, and splice(2) does not see bytes an
// sk_msg program redirected. Applications are unmodified programs, so their sockets are
// spliced by default only where both behave like plain TCP; a kernel with the fix gets app
// splicing back automatically on its next install.
#pragma once

#include <string>

#include "sockmesh/result.h"

namespace sm {

struct SpliceProbe {
  bool blocking_recv_ok = false;  // a blocked recv() on a sockhash socket kept waiting
  bool splice_ok = false;         // splice(2) returned the redirected bytes
  std::string detail;             // what was seen, for the install report
  bool app_splice_safe() const { return blocking_recv_ok && splice_ok; }
};

// Runs both checks on a loopback TCP pair in the caller's netns with a private sockhash
// (nothing is pinned or attached outside this call). Takes well under a second.
Result<SpliceProbe> probe_app_splice(const std::string& maps_dir);

}  // namespace sm
