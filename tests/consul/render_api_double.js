// Renders one of HashiCorp's consul-api-double templates (JavaScript template literals with
// faker calls) to plain JSON, with deterministic stand-ins: every faked address comes from
// 198.18.0.0/15, numbers are the low end of their range, choices take the first option.
//   node render_api_double.js TEMPLATE URL_PATH [ENV=VALUE...]
"use strict";
const fs = require("fs");

const [template, urlPath, ...envPairs] = process.argv.slice(2);
const env = {};
for (const p of envPairs) {
  const eq = p.indexOf("=");
  env[p.slice(0, eq)] = p.slice(eq + 1);
}
let ipCounter = 0;
const word = () => "word";
const fake = {
  internet: {
    ip: () => `198.18.${Math.floor(ipCounter / 250)}.${(ipCounter++ % 250) + 1}`,
    ipv6: () => "2001:2::1",
    protocol: () => "http",
    domainName: () => "example.test",
    userName: () => "user",
    password: () => "password",
    userAgent: () => "agent",
  },
  random: {
    number: (o) => (o && typeof o === "object" ? (o.min || 0) + 1 : 1),
    boolean: () => false,
    uuid: () => "00000000-0000-4000-8000-000000000000",
  },
  helpers: { randomize: (a) => a[0] },
  hacker: { noun: word },
  lorem: { word, words: () => "some words", paragraph: () => "a paragraph" },
  address: { countryCode: () => "EU" },
  system: { fileName: () => "file.txt" },
};
const range = (n) => Array.from({ length: Number(n) }, (_, i) => i);
const readEnv = (k, d) => (k in env ? env[k] : d);
const [pathname, search = ""] = urlPath.split("?");
const query = {};
for (const kv of search.split("&").filter(Boolean)) {
  const [k, v = ""] = kv.split("=");
  query[k] = v;
}
const location = { pathname, search: query };
const http = { method: "GET" };
const text = fs.readFileSync(template, "utf8");
const render = new Function("range", "env", "fake", "location", "http",
                            "return `" + text + "`;");
process.stdout.write(render(range, readEnv, fake, location, http));
