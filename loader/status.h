// `sockmesh-loader status`: what is installed (links and their programs, maps with entry
// counts, enrolled workloads, counters), as text for people or JSON for scripts.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "mesh.h"

namespace sm {

// The counters of sm_stats by name, in declaration order.
std::vector<std::pair<std::string, uint64_t>> stats_fields(const sm_stats& s);

// Collects the status of the install at `pins` (installed=false when there is none).
Result<nlohmann::json> collect_status(const PinLayout& pins);
std::string render_status_text(const nlohmann::json& status);

}  // namespace sm
