// The subset validator; see schema_validator.h.
#include "schema_validator.h"

#include <arpa/inet.h>

#include <regex>
#include <set>

namespace sm::test {

SchemaValidator::SchemaValidator(const std::string& swagger_file)
    : root_(YAML::LoadFile(swagger_file)) {}

YAML::Node SchemaValidator::resolve(const YAML::Node& schema) const {
  YAML::Node s = schema;
  for (int depth = 0; s["$ref"] && depth < 16; ++depth) {
    const std::string ref = s["$ref"].as<std::string>();
    const std::string prefix = "#/definitions/";
    if (ref.rfind(prefix, 0) != 0) throw std::runtime_error("unsupported $ref " + ref);
    s = root_["definitions"][ref.substr(prefix.size())];
    if (!s) throw std::runtime_error("dangling $ref " + ref);
  }
  return s;
}

std::vector<std::string> SchemaValidator::validate_body(const std::string& path,
                                                        const std::string& method,
                                                        const nlohmann::json& value,
                                                        bool strict) const {
  std::vector<std::string> errors;
  const YAML::Node op = root_["paths"][path][method];
  if (!op) return {"the API has no " + method + " " + path};
  for (const auto& p : op["parameters"]) {
    if (p["in"].as<std::string>() == "body") {
      check(p["schema"], value, "$", strict, errors);
      return errors;
    }
  }
  return {method + " " + path + " takes no body"};
}

void SchemaValidator::check(const YAML::Node& schema_in, const nlohmann::json& v,
                            const std::string& where, bool strict,
                            std::vector<std::string>& errors) const {
  // Documentation keywords; everything else must be understood below.
  static const std::set<std::string> kKnown = {
      "$ref",    "type",    "properties", "required",  "additionalProperties",
      "items",   "enum",    "minLength",  "maxLength", "pattern",
      "minimum", "maximum", "format",     "title",     "description",
      "example", "default"};
  const YAML::Node s = resolve(schema_in);
  for (const auto& kv : s) {
    const std::string key = kv.first.as<std::string>();
    if (!kKnown.count(key)) errors.push_back(where + ": schema keyword '" + key + "' unsupported");
  }
  const std::string type = s["type"] ? s["type"].as<std::string>() : "";
  auto fail = [&](const std::string& why) { errors.push_back(where + ": " + why); };
  if (type == "object") {
    if (!v.is_object()) return fail("expected an object");
    if (s["required"])
      for (const auto& r : s["required"])
        if (!v.contains(r.as<std::string>()))
          fail("missing required '" + r.as<std::string>() + "'");
    for (const auto& [name, member] : v.items()) {
      const std::string at = where + "." + name;
      if (s["properties"] && s["properties"][name]) {
        check(s["properties"][name], member, at, strict, errors);
      } else if (s["additionalProperties"]) {
        const YAML::Node ap = s["additionalProperties"];
        if (ap.IsScalar()) {
          if (!ap.as<bool>()) errors.push_back(at + ": not allowed (additionalProperties: false)");
        } else {
          check(ap, member, at, strict, errors);
        }
      } else if (strict) {
        errors.push_back(at + ": not declared by the schema (strict)");
      }
    }
  } else if (type == "array") {
    if (!v.is_array()) return fail("expected an array");
    for (size_t i = 0; i < v.size(); ++i)
      if (s["items"])
        check(s["items"], v[i], where + "[" + std::to_string(i) + "]", strict, errors);
  } else if (type == "string") {
    if (!v.is_string()) return fail("expected a string");
    const std::string str = v.get<std::string>();
    if (s["minLength"] && str.size() < s["minLength"].as<size_t>())
      fail("shorter than " + s["minLength"].as<std::string>());
    if (s["maxLength"] && str.size() > s["maxLength"].as<size_t>())
      fail("longer than " + s["maxLength"].as<std::string>());
    // JSON Schema patterns are ECMA-262 regular expressions, not anchored.
    if (s["pattern"] && !std::regex_search(str, std::regex(s["pattern"].as<std::string>())))
      fail("'" + str + "' does not match " + s["pattern"].as<std::string>());
    if (s["enum"]) {
      bool found = false;
      for (const auto& e : s["enum"]) found |= e.as<std::string>() == str;
      if (!found) fail("'" + str + "' is not one of the enum's values");
    }
    if (s["format"]) {
      const std::string f = s["format"].as<std::string>();
      unsigned char buf[16];
      if (f == "ipv4" && inet_pton(AF_INET, str.c_str(), buf) != 1) fail("not an ipv4 address");
      if (f == "ipv6" && inet_pton(AF_INET6, str.c_str(), buf) != 1) fail("not an ipv6 address");
      if (f != "ipv4" && f != "ipv6") fail("string format '" + f + "' unsupported");
    }
  } else if (type == "integer") {
    if (!v.is_number_integer()) return fail("expected an integer");
    if (s["minimum"] && v.get<int64_t>() < s["minimum"].as<int64_t>())
      fail("below the minimum " + s["minimum"].as<std::string>());
    if (s["maximum"] && v.get<int64_t>() > s["maximum"].as<int64_t>())
      fail("above the maximum " + s["maximum"].as<std::string>());
    if (s["format"] && s["format"].as<std::string>() != "int64" &&
        s["format"].as<std::string>() != "int32")
      fail("integer format '" + s["format"].as<std::string>() + "' unsupported");
  } else if (type == "boolean") {
    if (!v.is_boolean()) fail("expected a boolean");
  } else {
    fail("schema type '" + type + "' unsupported");
  }
}

}  // namespace sm::test
