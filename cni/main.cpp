// sockmesh-cni: a chained CNI plugin (spec 1.0.0) that enrolls a pod's network namespace
// into sockmesh. The runtime passes CNI_* in the environment and the network config on
// stdin; the answer (or a CNI error object) goes to stdout, logs to stderr.
#include <iostream>
#include <iterator>

#include "loader_enroller.h"
#include "plugin.h"

extern char** environ;

int main() {
  sm::cni::Env env;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    if (kv.rfind("CNI_", 0) != 0) continue;
    size_t eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  std::string input(std::istreambuf_iterator<char>(std::cin), {});
  sm::cni::LoaderEnroller enroller;
  auto outcome = sm::cni::run(sm::cni::parse_request(env, input), enroller);
  std::cout << outcome.stdout_text << std::flush;
  return outcome.exit_code;
}
