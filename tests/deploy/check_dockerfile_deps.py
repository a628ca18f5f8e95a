#!/usr/bin/env python3
"""deploy/Dockerfile has no package list of its own: its build stage gets
every package from `scripts/install-deps` (the list README, CI and
scripts/test-fresh use) and its runtime stage from
`scripts/install-deps --runtime`. Fails when a RUN installs packages any
other way (apt-get/apt/aptitude install, dpkg -i), when the build stage
does not run scripts/install-deps with no arguments, or when the runtime
stage does not run it with --runtime. For another Dockerfile, the stages and
their install-deps arguments are given as STAGE=ARGUMENT (an unnamed stage
is its index: deploy/prometheus/Dockerfile is `0=--prometheus`).

usage: check_dockerfile_deps.py ROOT [DOCKERFILE [STAGE=ARGUMENT ...]]"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploylib  # noqa: E402

INSTALLERS = {"apt-get", "apt", "aptitude"}


def commands(run_args):
    """(command word, arguments) of every simple command of a RUN."""
    # RUN's own flags (--mount=..., --network=...) come first.
    run_args = re.sub(r"^(\s*--[a-z]+=\S+)+", "", run_args)
    for seg in deploylib.shell_segments(run_args):
        i = deploylib._command_start(seg)
        if i < len(seg):
            yield os.path.basename(seg[i]), seg[i + 1:]


def main():
    root = sys.argv[1]
    dockerfile = sys.argv[2] if len(sys.argv) > 2 else os.path.join(root, "deploy/Dockerfile")
    instrs = deploylib.dockerfile_instructions(dockerfile)
    names = deploylib.dockerfile_stage_names(instrs)
    failures = []
    calls = {}  # stage name -> [install-deps argument strings]
    for stage, instr, rest in instrs:
        if instr != "RUN":
            continue
        name = names.get(stage, str(stage))
        for cmd, args in commands(rest):
            if (cmd in INSTALLERS and "install" in args) or (
                    cmd == "dpkg" and ({"-i", "--install"} & set(args))):
                failures.append(f"stage '{name}' installs packages with `{cmd} {' '.join(args)}`: "
                                "name them in scripts/install-deps instead (one list)")
            if cmd == "install-deps":
                calls.setdefault(name, []).append(" ".join(args))
    want = {"build": "", "runtime": "--runtime"}
    if len(sys.argv) > 3:
        want = dict(a.split("=", 1) for a in sys.argv[3:])
    for stage, arg in want.items():
        if stage not in names.values():
            failures.append(f"no stage named '{stage}' (FROM ... AS {stage})")
        elif arg not in calls.get(stage, []):
            shown = " ".join(["scripts/install-deps", arg]).strip()
            failures.append(f"stage '{stage}' never runs `{shown}` "
                            f"(it runs: {calls.get(stage) or 'none'})")
    for f in failures:
        print("FAIL:", f)
    if failures:
        return 1
    print("ok:", ", ".join(f"stage {k} from `{('scripts/install-deps ' + v).strip()}`"
                           for k, v in want.items()),
          "; no other install in", os.path.relpath(dockerfile, root))
    return 0


if __name__ == "__main__":
    sys.exit(main())
