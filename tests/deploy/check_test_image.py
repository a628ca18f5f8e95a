#!/usr/bin/env python3
"""scripts/test-image runs the compose stack's services with `podman run`
(Debian's podman-compose 1.0.3 mishandles depends_on conditions and
${VAR:-}); this check keeps those runs and deploy/compose.yaml from
drifting apart. For the `anorand`, `seed`, `traffic` and `prometheus` services: the
command flags (with compose variables at their defaults), read_only, tmpfs,
cap_drop, security_opt, stop_grace_period, the entrypoint, every environment
variable and every volume's mount point appear in the script's `podman run` of
that service (the run whose --entrypoint is the service's, or for a service
without one the run with --network-alias NAME).

usage: check_test_image.py ROOT"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploylib  # noqa: E402


def podman_runs(script):
    """Token lists of every `podman run` in the script."""
    runs = []
    for line in deploylib.logical_lines(open(script).read()):
        for seg in deploylib.shell_segments(line):
            # Also `step NAME podman run ...` (the script's timed steps).
            for i in range(len(seg) - 1):
                if seg[i:i + 2] == ["podman", "run"]:
                    runs.append(seg[i + 2:])
                    break
    return runs


def option_values(tokens, name):
    vals = []
    for k, t in enumerate(tokens):
        if t == name and k + 1 < len(tokens):
            vals.append(tokens[k + 1])
        elif t.startswith(name + "="):
            vals.append(t.split("=", 1)[1])
    return vals


def expected(service):
    """(description, predicate on the run's tokens) pairs for one service."""
    want = []
    for flag in service.get("command") or []:
        # As compose runs it with no variables set: ${VAR:-default} -> default.
        flag = deploylib.compose_expand(flag, {})
        want.append((f"command {flag}", lambda t, f=flag: f in t))
    if service.get("read_only"):
        want.append(("read_only: --read-only", lambda t: "--read-only" in t))
    for path in service.get("tmpfs") or []:
        want.append((f"tmpfs {path}", lambda t, p=path: p in option_values(t, "--tmpfs")))
    for cap in service.get("cap_drop") or []:
        want.append((f"cap_drop {cap}", lambda t, c=cap: c in option_values(t, "--cap-drop")))
    for opt in service.get("security_opt") or []:
        # compose's "no-new-privileges:true" is podman's "no-new-privileges".
        short = re.sub(r":true$", "", opt)
        want.append((f"security_opt {opt}",
                     lambda t, o=opt, s=short: {o, s} & set(option_values(t, "--security-opt"))))
    grace = service.get("stop_grace_period")
    if grace:
        secs = re.fullmatch(r"(\d+)s", str(grace)).group(1)
        want.append((f"stop_grace_period {grace}",
                     lambda t, g=secs: g in option_values(t, "--stop-timeout")))
    for key in (service.get("environment") or {}):
        want.append((f"environment {key}",
                     lambda t, k=key: any(v.split("=", 1)[0] == k for v in option_values(t, "-e"))))
    for vol in service.get("volumes") or []:
        target = vol.split(":")[1]
        mode = vol.split(":")[2] if vol.count(":") >= 2 else ""
        want.append((f"volume {vol}",
                     lambda t, d=target, m=mode: any(
                         v.split(":")[1:2] == [d] and (not m or v.endswith(":" + m))
                         for v in option_values(t, "-v"))))
    return want


def main():
    root = sys.argv[1]
    compose = deploylib.load_yaml_docs(os.path.join(root, "deploy/compose.yaml"))[0]
    services = compose["services"]
    runs = podman_runs(os.path.join(root, "scripts/test-image"))
    failures = []
    for name in ("anorand", "seed", "traffic", "prometheus"):
        svc = services[name]
        entry = (svc.get("entrypoint") or [None])[0]
        if entry:
            matching = [r for r in runs if entry in option_values(r, "--entrypoint")]
        else:
            matching = [r for r in runs if name in option_values(r, "--network-alias")]
        if not matching:
            failures.append(f"service '{name}': scripts/test-image has no `podman run` of it "
                            f"({'--entrypoint ' + entry if entry else '--network-alias ' + name})")
            continue
        run = matching[0]
        checked = expected(svc)
        for what, ok in checked:
            if not ok(run):
                failures.append(f"service '{name}': compose.yaml has {what}; "
                                "its `podman run` in scripts/test-image does not")
        print(f"service {name}: {len(checked)} settings compared")
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
