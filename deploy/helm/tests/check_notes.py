#!/usr/bin/env python3
"""Checks the `argo-rollouts-config` entry printed in the release notes (argoRollouts.enabled).

Usage: check_notes.py NOTES.txt LOCATION [SHA256]

The indented ConfigMap in the notes must parse, validate as a ConfigMap, and its
`trafficRouterPlugins` must be the list Argo Rollouts accepts (spec 50 §1.1): the plugin name,
the location and sha256 given, and `args: [argo-plugin]`.
"""

import re
import sys
import textwrap

import yaml
from kubernetes_validate import utils as kv

PLUGIN_NAME = re.compile(r"^([a-zA-Z0-9\-]+)\/{1}([a-zA-Z0-9_\-.]+)$")  # Argo's own pattern


def main():
    path, location, *sha = sys.argv[1:]
    text = open(path).read()
    match = re.search(r"^(  apiVersion: v1\n(?:  .*\n)+)", text, re.MULTILINE)
    if not match:
        print("FAIL: no ConfigMap in the release notes", file=sys.stderr)
        return 1
    configmap = yaml.safe_load(textwrap.dedent(match.group(1)))
    kv.validate(configmap, "1.33.0", strict=True)
    plugins = yaml.safe_load(configmap["data"]["trafficRouterPlugins"])
    want = {"name": "rollout-router/traffic", "location": location, "args": ["argo-plugin"]}
    if sha:
        want["sha256"] = sha[0]
    problems = []
    if configmap["metadata"]["name"] != "argo-rollouts-config":
        problems.append(f"ConfigMap name {configmap['metadata']['name']}")
    if plugins != [want]:
        problems.append(f"trafficRouterPlugins {plugins}, want {[want]}")
    if not PLUGIN_NAME.match(plugins[0].get("name", "")):
        problems.append("the plugin name does not match Argo's pattern")
    if problems:
        print("FAIL: " + "; ".join(problems), file=sys.stderr)
        return 1
    print(f"ok   release notes: argo-rollouts-config entry {plugins[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
