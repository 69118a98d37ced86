// Which event loop the workers run. io_uring is the default. Where it is blocked (the
// default seccomp profiles of Docker and containerd answer io_uring_setup with EPERM,
// podman's (4.3) and kernels without io_uring with ENOSYS, kernel.io_uring_disabled with
// EPERM), --event-loop auto falls back to epoll and --event-loop uring refuses to start.
#pragma once

#include <string>

#include "proxy/options.h"
#include "sockmesh/result.h"

namespace sm::proxy {

const char* event_loop_name(EventLoop l);  // "uring", "epoll", "auto"

// Sets up what a worker's UringLoop needs (a ring and a provided-buffer ring) and tears it
// down again: ok, or the error a worker would meet.
Status probe_io_uring();

// The loop to run for `requested`, probing io_uring unless epoll was asked for. `note` says
// why auto chose epoll ("" otherwise). An error (uring asked for but unavailable, or
// io_uring failing for another reason than being blocked) names --event-loop.
Result<EventLoop> choose_event_loop(EventLoop requested, std::string* note);

}  // namespace sm::proxy
