#!/usr/bin/env python3
"""Writes fixtures/envoy_proto_schema.json: the fields (proto names, types, repeated/map) of the
Envoy v3 messages sockmesh's admin prints, read from Envoy's own .proto files.

    make_envoy_proto_schema.py DATA_PLANE_API_TREE COMMIT > fixtures/envoy_proto_schema.json

DATA_PLANE_API_TREE holds the envoy/ directory of github.com/envoyproxy/data-plane-api (the api/ tree of
envoyproxy/envoy). admin_test.cpp walks the admin's JSON against this schema.
"""
import json
import os
import re
import sys

# The messages the admin's JSON holds (ConfigDump, ServerInfo, Listeners and what they nest).
ROOTS = [
    "envoy.admin.v3.ConfigDump",
    "envoy.admin.v3.ListenersConfigDump",
    "envoy.admin.v3.ListenersConfigDump.StaticListener",
    "envoy.admin.v3.ListenersConfigDump.DynamicListener",
    "envoy.admin.v3.ClustersConfigDump",
    "envoy.admin.v3.ClustersConfigDump.StaticCluster",
    "envoy.admin.v3.ClustersConfigDump.DynamicCluster",
    "envoy.admin.v3.RoutesConfigDump",
    "envoy.admin.v3.RoutesConfigDump.StaticRouteConfig",
    "envoy.admin.v3.RoutesConfigDump.DynamicRouteConfig",
    "envoy.admin.v3.ServerInfo",
    "envoy.admin.v3.CommandLineOptions",
    "envoy.admin.v3.Listeners",
    "envoy.admin.v3.ListenerStatus",
    "envoy.config.core.v3.Node",
    "envoy.config.core.v3.Address",
    "envoy.config.core.v3.SocketAddress",
    "envoy.config.core.v3.Metadata",
    "envoy.config.core.v3.HttpProtocolOptions",
    "envoy.config.core.v3.Http1ProtocolOptions",
    "envoy.config.listener.v3.Listener",
    "envoy.config.listener.v3.ListenerFilter",
    "envoy.config.listener.v3.FilterChain",
    "envoy.config.listener.v3.Filter",
    "envoy.extensions.filters.listener.original_dst.v3.OriginalDst",
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
    "envoy.extensions.filters.network.http_connection_manager.v3.Rds",
    "envoy.config.route.v3.RouteConfiguration",
    "envoy.config.route.v3.VirtualHost",
    "envoy.config.route.v3.Route",
    "envoy.config.route.v3.RouteMatch",
    "envoy.config.route.v3.HeaderMatcher",
    "envoy.config.route.v3.RouteAction",
    "envoy.config.route.v3.WeightedCluster",
    "envoy.config.route.v3.WeightedCluster.ClusterWeight",
    "envoy.config.route.v3.RetryPolicy",
    "envoy.config.route.v3.RetryPolicy.RetryBackOff",
    "envoy.type.matcher.v3.StringMatcher",
    "envoy.type.matcher.v3.RegexMatcher",
    "envoy.type.v3.FractionalPercent",
    "envoy.type.v3.Percent",
    "envoy.extensions.filters.http.fault.v3.HTTPFault",
    "envoy.extensions.filters.http.fault.v3.FaultAbort",
    "envoy.extensions.filters.common.fault.v3.FaultDelay",
    "envoy.config.cluster.v3.Cluster",
    "envoy.config.cluster.v3.Cluster.CommonLbConfig",
    "envoy.config.cluster.v3.CircuitBreakers",
    "envoy.config.cluster.v3.CircuitBreakers.Thresholds",
    "envoy.config.cluster.v3.CircuitBreakers.Thresholds.RetryBudget",
    "envoy.config.cluster.v3.OutlierDetection",
    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions.ExplicitHttpConfig",
    "envoy.config.endpoint.v3.ClusterLoadAssignment",
    "envoy.config.endpoint.v3.LocalityLbEndpoints",
    "envoy.config.endpoint.v3.LbEndpoint",
    "envoy.config.endpoint.v3.Endpoint",
]

TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[A-Za-z_][\w.]*|\.[A-Za-z_][\w.]*|-?\d[\w.]*|[{}()\[\]<>;=,]')


def tokens(text):
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return TOKEN.findall(text)


def parse_file(path, messages, enums):
    toks = tokens(open(path).read())
    package = ""
    i = 0
    scope = []  # [(kind, full name)]

    def skip_statement(i):
        depth = 0
        while i < len(toks):
            t = toks[i]
            if t in "[(":
                depth += 1
            elif t in "])":
                depth -= 1
            elif t == "{":
                # option values can be message literals
                depth += 1
            elif t == "}":
                depth -= 1
            elif t == ";" and depth == 0:
                return i + 1
            i += 1
        return i

    while i < len(toks):
        t = toks[i]
        if t == "package":
            package = toks[i + 1]
            i += 3
        elif t in ("syntax", "import", "option", "reserved", "extensions"):
            i = skip_statement(i)
        elif t in ("message", "enum", "oneof"):
            name = toks[i + 1]
            parent = scope[-1][1] if scope and scope[-1][0] != "oneof" else (
                scope[-2][1] if len(scope) > 1 else package)
            if not scope:
                parent = package
            if t == "oneof":
                scope.append(("oneof", scope[-1][1]))
            else:
                full = parent + "." + name if parent else name
                scope.append((t, full))
                if t == "message":
                    messages[full] = {"fields": {}, "file": path, "scope": full}
                else:
                    enums[full] = []
            i += 3  # name {
        elif t == "}":
            scope.pop()
            i += 1
        elif t == ";":
            i += 1
        elif scope and scope[-1][0] == "enum":
            enums[scope[-1][1]].append(t)
            i = skip_statement(i)
        elif scope:
            owner = scope[-1][1]
            repeated = False
            if t in ("repeated", "optional"):
                repeated = t == "repeated"
                i += 1
            if toks[i] == "map":
                # map < K , V > name = N
                value_type = toks[i + 4]
                fname = toks[i + 6]
                messages[owner]["fields"][fname] = {"type": value_type, "map": True}
            else:
                ftype, fname = toks[i], toks[i + 1]
                messages[owner]["fields"][fname] = {"type": ftype, "repeated": repeated}
            i = skip_statement(i)
        else:
            i = skip_statement(i)


SCALARS = {"string", "bytes", "bool", "double", "float", "int32", "int64", "uint32", "uint64",
           "sint32", "sint64", "fixed32", "fixed64", "sfixed32", "sfixed64"}


def resolve(name, scope, messages, enums):
    if name in SCALARS:
        return name
    if name.startswith("."):
        return name[1:]
    parts = scope.split(".")
    while parts:
        cand = ".".join(parts) + "." + name
        if cand in messages or cand in enums:
            return cand
        parts.pop()
    return name  # google.protobuf.*, udpa, xds: printed by name


def main():
    root = sys.argv[1]
    messages, enums = {}, {}
    for dirpath, _, files in os.walk(os.path.join(root, "envoy")):
        for f in files:
            if f.endswith(".proto"):
                parse_file(os.path.join(dirpath, f), messages, enums)
    out = {"source": "github.com/envoyproxy/data-plane-api@" + sys.argv[2], "messages": {},
           "enums": {}}
    for m in ROOTS:
        fields = {}
        for fname, f in messages[m]["fields"].items():
            t = resolve(f["type"], m, messages, enums)
            entry = {"type": t}
            if t in enums:
                entry["enum"] = True
                out["enums"][t] = enums[t]
            if f.get("repeated"):
                entry["repeated"] = True
            if f.get("map"):
                entry["map"] = True
            fields[fname] = entry
        out["messages"][m] = fields
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
