// A validator for the part of Swagger 2.0 / JSON Schema that Zipkin's published API
// (fixtures/zipkin2-api.yaml) uses: $ref, type, properties, required,
// additionalProperties, items, enum, minLength, maxLength, pattern, minimum, maximum,
// format ipv4/ipv6/int64.
// A keyword it does not know is reported as an error, so no constraint is skipped quietly.
#pragma once

#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace sm::test {

class SchemaValidator {
 public:
  explicit SchemaValidator(const std::string& swagger_file);
  // Errors of `value` against the schema of the body parameter of `method` `path`
  // (e.g. "post", "/spans"); empty when valid. `strict` also refuses object members the
  // schema does not declare (beyond the schema: catches misspelled optional fields).
  std::vector<std::string> validate_body(const std::string& path, const std::string& method,
                                         const nlohmann::json& value, bool strict) const;

 private:
  void check(const YAML::Node& schema, const nlohmann::json& v, const std::string& where,
             bool strict, std::vector<std::string>& errors) const;
  YAML::Node resolve(const YAML::Node& schema) const;

  YAML::Node root_;
};

}  // namespace sm::test
