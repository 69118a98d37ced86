// envoy_config_dump.h through the admin: /config_dump, /server_info and /listeners?format=json
// are walked against the field names and types of Envoy's own protos
// (fixtures/envoy_proto_schema.json, written by make_envoy_proto_schema.py from
// envoyproxy/data-plane-api); ?resource=, ?mask= and ?name_regex= as Envoy documents them.
#include "proxy/envoy_config_dump.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "proxy/admin.h"
#include "route/config_json.h"

namespace sm::proxy {
namespace {

using json = nlohmann::json;

const json& schema() {
  static const json s = [] {
    std::ifstream in(std::string(SM_PROXY_FIXTURES) + "/envoy_proto_schema.json");
    return json::parse(in);
  }();
  return s;
}

// Walks `v` as proto3 JSON of `type`; every key must be a field of its message, every value
// of the field's type. Problems are appended as "path: what".
class ProtoWalker {
 public:
  std::vector<std::string> errors;

  void message(const json& v, const std::string& type, const std::string& path) {
    const json& messages = schema()["messages"];
    if (!messages.contains(type)) {
      errors.push_back(path + ": " + type + " is not in the schema");
      return;
    }
    if (!v.is_object()) {
      errors.push_back(path + ": " + type + " must be an object");
      return;
    }
    const json& fields = messages[type];
    for (const auto& [key, value] : v.items()) {
      if (key == "@type") continue;  // checked by any()
      if (!fields.contains(key)) {
        errors.push_back(path + "." + key + ": not a field of " + type);
        continue;
      }
      const json& f = fields[key];
      const std::string ft = f["type"];
      const bool is_enum = f.value("enum", false);
      if (f.value("map", false)) {
        if (!value.is_object()) errors.push_back(path + "." + key + ": a map must be an object");
        for (const auto& [k, x] : value.items()) one(x, ft, is_enum, path + "." + key + "." + k);
      } else if (f.value("repeated", false)) {
        if (!value.is_array()) errors.push_back(path + "." + key + ": repeated must be an array");
        for (size_t i = 0; i < value.size(); ++i)
          one(value[i], ft, is_enum, path + "." + key + "[" + std::to_string(i) + "]");
      } else {
        one(value, ft, is_enum, path + "." + key);
      }
    }
  }

  // A google.protobuf.Any: "@type" names the message the other keys belong to.
  void any(const json& v, const std::string& path) {
    static const std::string kPrefix = "type.googleapis.com/";
    if (!v.is_object() || !v.contains("@type") || !v["@type"].is_string() ||
        !v["@type"].get<std::string>().starts_with(kPrefix)) {
      errors.push_back(path + ": an Any needs \"@type\": \"" + kPrefix + "...\"");
      return;
    }
    message(v, v["@type"].get<std::string>().substr(kPrefix.size()), path);
  }

 private:
  void one(const json& v, const std::string& type, bool is_enum, const std::string& path) {
    auto want = [&](bool ok, const char* what) {
      if (!ok) errors.push_back(path + ": " + type + " must be " + what + ", is " + v.dump());
    };
    if (is_enum) {
      const json& values = schema()["enums"][type];
      want(v.is_string() && std::find(values.begin(), values.end(), v) != values.end(),
           "one of its enum names");
    } else if (type == "string" || type == "google.protobuf.StringValue") {
      want(v.is_string(), "a string");
    } else if (type == "bool" || type == "google.protobuf.BoolValue") {
      want(v.is_boolean(), "a bool");
    } else if (type == "uint32" || type == "google.protobuf.UInt32Value") {
      want(v.is_number_unsigned(), "an unsigned number");
    } else if (type == "int32" || type == "double" || type == "float" ||
               type == "google.protobuf.DoubleValue") {
      want(v.is_number(), "a number");
    } else if (type == "uint64" || type == "int64" || type == "google.protobuf.UInt64Value") {
      want(v.is_string() && std::regex_match(v.get<std::string>(), std::regex("-?[0-9]+")),
           "a decimal string (proto3 JSON of a 64-bit integer)");
    } else if (type == "google.protobuf.Duration") {
      want(v.is_string() &&
               std::regex_match(v.get<std::string>(), std::regex("[0-9]+(\\.[0-9]{3,9})?s")),
           "a duration string");
    } else if (type == "google.protobuf.Timestamp") {
      want(v.is_string(), "an RFC 3339 string");
    } else if (type == "google.protobuf.Struct") {
      want(v.is_object(), "an object");
    } else if (type == "google.protobuf.Any") {
      any(v, path);
    } else {
      message(v, type, path);
    }
  }
};

class EnvoyConfigDumpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    opts_.workers = 2;
    shared_ = std::make_unique<Shared>(opts_);
    // Every route feature the fixtures have: weighted clusters, retries with budgets and
    // back-off, header and regex matches, faults, outlier detection, subsets' labels.
    route::RouteConfig all;
    std::set<std::string> names, domains, clusters;
    for (const char* f : {"bookinfo.json", "features.json", "control_features.json"}) {
      auto cfg = route::load_route_config(std::string(SM_ROUTE_FIXTURES) + "/" + f);
      ASSERT_TRUE(cfg) << cfg.error().message();
      // One table: a name, domain or cluster that two fixtures share is kept once.
      for (auto& vh : cfg->virtual_hosts) {
        if (!names.insert(vh.name).second) vh.name += "-again";
        for (auto& d : vh.domains)
          if (!domains.insert(d).second) d += ".again";
        all.virtual_hosts.push_back(vh);
      }
      for (auto& c : cfg->clusters)
        if (clusters.insert(c.name).second) all.clusters.push_back(c);
    }
    config_ = all;
    auto table = route::RouteTable::build(std::move(all), shared_->cluster_states);
    ASSERT_TRUE(table) << table.error().message();
    shared_->routes.publish(*table);
    admin_ = std::make_unique<Admin>(*shared_);
  }
  json get(const std::string& target, int status = 200) {
    auto r = admin_->handle("GET", target);
    EXPECT_EQ(r.status, status) << target << ": " << r.body;
    if (r.status != 200) return json();
    EXPECT_EQ(r.content_type, "application/json");
    return json::parse(r.body);
  }
  Options opts_;
  std::unique_ptr<Shared> shared_;
  std::unique_ptr<Admin> admin_;
  route::RouteConfig config_;
};

std::string joined(const std::vector<std::string>& v) {
  std::string o;
  for (const auto& s : v) o += s + "\n";
  return o;
}

TEST_F(EnvoyConfigDumpTest, EveryKeyIsAFieldOfEnvoysProtos) {
  json dump = get("/config_dump");
  ProtoWalker w;
  w.message(dump, "envoy.admin.v3.ConfigDump", "$");
  EXPECT_TRUE(w.errors.empty()) << joined(w.errors);

  ASSERT_EQ(dump["configs"].size(), 3u);
  EXPECT_EQ(dump["configs"][0]["@type"], "type.googleapis.com/envoy.admin.v3.ClustersConfigDump");
  EXPECT_EQ(dump["configs"][1]["@type"], "type.googleapis.com/envoy.admin.v3.ListenersConfigDump");
  EXPECT_EQ(dump["configs"][2]["@type"], "type.googleapis.com/envoy.admin.v3.RoutesConfigDump");
  EXPECT_EQ(dump["configs"][0]["dynamic_active_clusters"].size(), config_.clusters.size());
  const json& rc = dump["configs"][2]["dynamic_route_configs"][0]["route_config"];
  EXPECT_EQ(rc["virtual_hosts"].size(), config_.virtual_hosts.size());
  // The route features made it into Envoy's fields, not only valid keys.
  const std::string text = dump.dump();
  for (const char* needle :
       {"\"weighted_clusters\":{\"clusters\":[", "\"retry_back_off\":{\"base_interval\":",
        "\"envoy.filters.http.fault\":{\"@type\":\"type.googleapis.com/envoy.extensions.filters."
        "http.fault.v3.HTTPFault\"",
        "\"safe_regex\":{\"regex\":", "\"string_match\":{",
        "\"retry_budget\":{\"budget_percent\":{",
        "\"filter_metadata\":{\"envoy.lb\":{\"version\":\"v1\"}}",
        "\"socket_address\":{\"address\":\"", "\"traffic_direction\":\"OUTBOUND\"",
        "\"route_config_name\":\"sockmesh\""})
    EXPECT_NE(text.find(needle), std::string::npos) << needle;
}

TEST_F(EnvoyConfigDumpTest, ResourcePicksOneRepeatedFieldWithItsElementType) {
  json d = get("/config_dump?resource=dynamic_route_configs");
  ASSERT_EQ(d["configs"].size(), 1u);
  EXPECT_EQ(d["configs"][0]["@type"],
            "type.googleapis.com/envoy.admin.v3.RoutesConfigDump.DynamicRouteConfig");
  ProtoWalker w;
  w.any(d["configs"][0], "$.configs[0]");
  EXPECT_TRUE(w.errors.empty()) << joined(w.errors);
  EXPECT_FALSE(d["configs"][0]["route_config"]["virtual_hosts"][0]["routes"].empty());

  json l = get("/config_dump?resource=static_listeners");
  ASSERT_EQ(l["configs"].size(), 2u);
  EXPECT_EQ(l["configs"][0]["listener"]["name"], "outbound");
  EXPECT_EQ(l["configs"][0]["listener"]["address"]["socket_address"]["port_value"], 15001);
  EXPECT_EQ(l["configs"][1]["listener"]["address"]["socket_address"]["port_value"], 15006);
  EXPECT_EQ(get("/config_dump?resource=dynamic_warming_clusters")["configs"], json::array());
  get("/config_dump?resource=virtual_hosts", 404);
}

TEST_F(EnvoyConfigDumpTest, ResourceAndMaskKeepOnlyTheNamedFieldsOfEachElement) {
  // Envoy's documented example: the names of all active dynamic clusters.
  json d = get("/config_dump?resource=dynamic_active_clusters&mask=cluster.name");
  ASSERT_EQ(d["configs"].size(), config_.clusters.size());
  for (size_t i = 0; i < config_.clusters.size(); ++i) {
    const json& c = d["configs"][i];
    EXPECT_EQ(
        c, (json{{"@type", "type.googleapis.com/envoy.admin.v3.ClustersConfigDump.DynamicCluster"},
                 {"cluster",
                  {{"@type", "type.googleapis.com/envoy.config.cluster.v3.Cluster"},
                   {"name", config_.clusters[i].name}}}}));
  }
}

TEST_F(EnvoyConfigDumpTest, MaskAppliesToEachTopLevelDump) {
  json d = get("/config_dump?mask=dynamic_route_configs,static_listeners");
  ASSERT_EQ(d["configs"].size(), 3u);
  EXPECT_EQ(d["configs"][0],
            (json{{"@type", "type.googleapis.com/envoy.admin.v3.ClustersConfigDump"}}));
  EXPECT_EQ(d["configs"][1]["static_listeners"].size(), 2u);
  EXPECT_EQ(d["configs"][2]["dynamic_route_configs"].size(), 1u);
  // Paths through repeated fields apply to every element.
  json v = get("/config_dump?mask=dynamic_route_configs.route_config.virtual_hosts.name");
  const json& vhs = v["configs"][2]["dynamic_route_configs"][0]["route_config"]["virtual_hosts"];
  ASSERT_EQ(vhs.size(), config_.virtual_hosts.size());
  EXPECT_EQ(vhs[0], (json{{"name", config_.virtual_hosts[0].name}}));
  EXPECT_EQ(admin_->handle("GET", "/config_dump?mask=nope").status, 400);
  EXPECT_EQ(admin_->handle("GET", "/config_dump?resource=static_listeners&mask=nope").status, 400);
}

TEST_F(EnvoyConfigDumpTest, NameRegexFiltersByResourceName) {
  json d =
      get("/config_dump?resource=dynamic_active_clusters&name_regex=reviews&mask=cluster.name");
  size_t want = 0;
  for (const auto& c : config_.clusters) want += c.name.find("reviews") != std::string::npos;
  ASSERT_GT(want, 0u);
  ASSERT_LT(want, config_.clusters.size());
  ASSERT_EQ(d["configs"].size(), want);
  for (const auto& c : d["configs"])
    EXPECT_NE(c["cluster"]["name"].get<std::string>().find("reviews"), std::string::npos);
  EXPECT_EQ(admin_->handle("GET", "/config_dump?name_regex=(").status, 400);
}

TEST_F(EnvoyConfigDumpTest, NativeTableStaysUnderFormatSockmesh) {
  auto r = admin_->handle("GET", "/config_dump?format=sockmesh");
  ASSERT_EQ(r.status, 200);
  auto again = route::parse_route_config(r.body);
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(*again, config_);
  EXPECT_EQ(admin_->handle("GET", "/config_dump?format=yaml").status, 400);
}

TEST_F(EnvoyConfigDumpTest, ServerInfoIsEnvoysServerInfo) {
  json s = get("/server_info");
  ProtoWalker w;
  w.message(s, "envoy.admin.v3.ServerInfo", "$");
  EXPECT_TRUE(w.errors.empty()) << joined(w.errors);
  EXPECT_EQ(s["state"], "PRE_INITIALIZING");  // no worker runs yet
  EXPECT_EQ(s["command_line_options"]["concurrency"], 2);
  EXPECT_EQ(s["uptime_current_epoch"], "0s");
  shared_->workers_running = 2;
  EXPECT_EQ(get("/server_info")["state"], "LIVE");
  shared_->earlier_epochs_uptime_ms = 61'000;
  EXPECT_EQ(get("/server_info")["uptime_all_epochs"], "61s");
  shared_->draining = true;
  EXPECT_EQ(get("/server_info")["state"], "DRAINING");
}

TEST_F(EnvoyConfigDumpTest, ListenersJsonIsEnvoysListeners) {
  json l = get("/listeners?format=json");
  ProtoWalker w;
  w.message(l, "envoy.admin.v3.Listeners", "$");
  EXPECT_TRUE(w.errors.empty()) << joined(w.errors);
  ASSERT_EQ(l["listener_statuses"].size(), 2u);
  EXPECT_EQ(l["listener_statuses"][0]["name"], "outbound");
  EXPECT_EQ(l["listener_statuses"][0]["local_address"]["socket_address"]["port_value"], 15001);
  EXPECT_EQ(l["listener_statuses"][1]["local_address"]["socket_address"]["port_value"], 15006);
}

TEST_F(EnvoyConfigDumpTest, StatsJsonHasEnvoysShape) {
  shared_->listener_stats[0].downstream_rq_time.record_us(1500);
  json s = get("/stats?format=json");
  ASSERT_TRUE(s["stats"].is_array());
  bool histograms = false;
  for (const auto& row : s["stats"]) {
    if (row.contains("histograms")) {
      histograms = true;
      EXPECT_EQ(row["histograms"]["supported_quantiles"].size(), 10u);
      for (const auto& q : row["histograms"]["computed_quantiles"]) {
        EXPECT_TRUE(q["name"].is_string());
        EXPECT_EQ(q["values"].size(), 10u);
      }
      continue;
    }
    EXPECT_EQ(row.size(), 2u) << row;
    EXPECT_TRUE(row["name"].is_string());
    EXPECT_TRUE(row["value"].is_number_unsigned());
  }
  EXPECT_TRUE(histograms);
  EXPECT_EQ(s["stats"][0], (json{{"name", "server.state"}, {"value", 2}}));
}

// A walker that would accept anything proves nothing: it must catch a wrong key and type.
TEST(ProtoWalkerSelfCheck, RejectsUnknownFieldsAndWrongTypes) {
  ProtoWalker w;
  w.message(json{{"name", "x"}, {"domainz", json::array()}}, "envoy.config.route.v3.VirtualHost",
            "$");
  w.message(json{{"timeout", 15}}, "envoy.config.route.v3.RouteAction", "$");
  w.message(json{{"state", "SLEEPING"}}, "envoy.admin.v3.ServerInfo", "$");
  w.any(json{{"name", "x"}}, "$");
  EXPECT_EQ(w.errors.size(), 4u) << joined(w.errors);
}

}  // namespace
}  // namespace sm::proxy
