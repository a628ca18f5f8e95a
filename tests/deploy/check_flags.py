#!/usr/bin/env python3
"""Every flag that deploy/ and docs/DEPLOY.md pass to anorand-server or to an
`anorand` command exists in the built binaries' --help output.

usage: check_flags.py ROOT ANORAND_SERVER ANORAND_CLI

Looks at: the Dockerfile (ENTRYPOINT + CMD, HEALTHCHECK, RUN), compose.yaml
(command/entrypoint of the services on the anorand image), the rendered
kustomize overlays and deploy/k8s/jobs/*.yaml (container args, --flagfile
files from their ConfigMaps, shell scripts in command/args), the flag files
on disk, deploy/scripts/*, and the shell blocks of docs/DEPLOY.md."""

import glob
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploylib as dl  # noqa: E402


def main():
    root, server, cli = sys.argv[1:4]
    for b in (server, cli):
        if not os.access(b, os.X_OK):
            dl.skip(f"{b} is not built")
    sflags = dl.server_flags(server)
    commands = dl.cli_commands(cli)
    f = dl.Failures("deploy flags")
    seen = {"server": 0, "cli": 0}

    def check_server(args, where):
        seen["server"] += 1
        for t in args:
            name = dl.flag_name(t)
            if name is None:
                # Positional words after the server are always a mistake.
                f.check(t.startswith("$"), f"{where}: anorand-server gets a non-flag argument '{t}'")
                continue
            f.check(name in sflags or name in dl.ABSL_USAGE_FLAGS,
                    f"{where}: anorand-server has no flag --{name} "
                    f"(known: {', '.join(sorted(sflags))})")

    def check_cli(args, where):
        seen["cli"] += 1
        if not args or args[0] in ("--help", "-h", "help"):
            return
        command = args[0]
        if not f.check(command in commands, f"{where}: anorand has no command '{command}'"):
            return
        for t in args[1:]:
            name = dl.flag_name(t)
            if name is not None:
                f.check(name in commands[command],
                        f"{where}: `anorand {command}` has no flag --{name} "
                        f"(known: {', '.join(sorted(commands[command]))})")

    def check(program, args, where):
        if program == "anorand-server":
            check_server(args, where)
        else:
            check_cli(args, where)

    def check_shell(text, where):
        for program, args in dl.invocations_in_shell(text):
            check(program, args, where)

    # Dockerfile
    dockerfile = os.path.join(root, "deploy/Dockerfile")
    instrs = dl.dockerfile_instructions(dockerfile)
    last = max(s for s, _, _ in instrs)
    entry, cmd = None, None
    for stage, instr, rest in instrs:
        if instr == "RUN":
            check_shell(rest, f"Dockerfile RUN (stage {stage})")
        if stage != last:
            continue
        if instr == "ENTRYPOINT":
            entry = dl.exec_form(rest)
        elif instr == "CMD":
            cmd = dl.exec_form(rest)
        elif instr == "HEALTHCHECK":
            hc = rest.split("CMD", 1)[1] if "CMD" in rest else ""
            argv = dl.exec_form(hc)
            if f.check(argv, "Dockerfile HEALTHCHECK CMD is not in exec form"):
                check(os.path.basename(argv[0]), argv[1:], "Dockerfile HEALTHCHECK")
    if f.check(entry and cmd, "Dockerfile: ENTRYPOINT and CMD must be exec form"):
        check(os.path.basename(entry[0]), entry[1:] + cmd, "Dockerfile ENTRYPOINT + CMD")

    # compose.yaml
    compose = dl.load_yaml_docs(os.path.join(root, "deploy/compose.yaml"))[0]
    for name, svc in compose.get("services", {}).items():
        # The anorand image's services; the Prometheus image is also built
        # here, from deploy/prometheus/Dockerfile.
        build = svc.get("build")
        builds_anorand = isinstance(build, dict) and build.get("dockerfile") == "deploy/Dockerfile"
        if not dl.is_anorand_image(dl.compose_image(svc)) and not builds_anorand:
            continue
        entrypoint = svc.get("entrypoint") or ["/usr/local/bin/anorand-server"]
        command = svc.get("command") or []
        if isinstance(entrypoint, str):
            entrypoint = entrypoint.split()
        if isinstance(command, str):
            command = command.split()
        # As compose runs it with no variables set (${VAR:-default} -> default).
        command = [dl.compose_expand(t, {}) for t in command]
        program = os.path.basename(entrypoint[0])
        if program in dl.SERVER_NAMES | dl.CLI_NAMES:
            check(program, entrypoint[1:] + command, f"compose service {name}")
        else:
            # A helper script from deploy/scripts: checked as a script below.
            f.check(os.path.exists(os.path.join(root, "deploy/scripts", program)),
                    f"compose service {name}: entrypoint {entrypoint[0]} is not in deploy/scripts")
        hc = (svc.get("healthcheck") or {}).get("test")
        if isinstance(hc, list) and hc and hc[0] == "CMD":
            check(os.path.basename(hc[1]), hc[2:], f"compose service {name} healthcheck")

    # Kubernetes
    kubectl = dl.kubectl_kustomize()
    k8s = os.path.join(root, "deploy/k8s")
    sets = []
    if kubectl:
        for o in dl.OVERLAYS:
            sets.append((f"overlay {o}", dl.render(kubectl, os.path.join(k8s, "overlays", o))))
    else:
        print("note: no kubectl with kustomize >= v4; checking the flag files and raw manifests")
    for path in sorted(glob.glob(os.path.join(k8s, "jobs", "*.yaml"))):
        sets.append((os.path.relpath(path, root), dl.load_yaml_docs(path)))
    for label, docs in sets:
        configmaps = {d["metadata"]["name"]: d.get("data", {}) for d in dl.by_kind(docs, "ConfigMap")}
        for d in docs:
            spec = d.get("spec", {})
            pod = (spec.get("jobTemplate", {}).get("spec", spec).get("template", {}).get("spec")
                   if d.get("kind") in ("Deployment", "Job", "CronJob", "StatefulSet")
                   else spec if d.get("kind") == "Pod" else None)
            if not pod:
                continue
            mounts_cm = {}
            vols = {v["name"]: v for v in pod.get("volumes", [])}
            for c in pod.get("containers", []):
                if not dl.is_anorand_image(c.get("image", "")):
                    continue
                where = f"{label} {d['kind']}/{d['metadata'].get('name') or d['metadata'].get('generateName')}"
                for m in c.get("volumeMounts", []):
                    v = vols.get(m["name"], {})
                    if "configMap" in v:
                        mounts_cm[m["mountPath"]] = v["configMap"]["name"]
                command = c.get("command")
                args = c.get("args", [])
                if command and os.path.basename(command[0]) in ("bash", "sh"):
                    check_shell("\n".join(a for a in args), where + " script")
                    continue
                argv = (command or ["anorand-server"]) + args
                program = os.path.basename(argv[0])
                if program in dl.SERVER_NAMES | dl.CLI_NAMES:
                    check(program, argv[1:], where)
                for t in argv[1:]:
                    if dl.flag_name(t) == "flagfile":
                        for path in t.split("=", 1)[1].split(","):
                            folder, key = os.path.split(path)
                            cm = mounts_cm.get(folder)
                            if not f.check(cm in configmaps and key in configmaps[cm],
                                           f"{where}: --flagfile {path} is no key of a mounted ConfigMap"):
                                continue
                            check_server(dl.parse_flagfile(configmaps[cm][key]),
                                         f"{where} flag file {key}")
    # The flag files on disk (also covers the case without kubectl).
    for path in sorted(glob.glob(os.path.join(k8s, "**", "*.flags"), recursive=True)):
        with open(path) as fh:
            check_server(dl.parse_flagfile(fh.read()), os.path.relpath(path, root))

    # Scripts and docs
    for path in sorted(glob.glob(os.path.join(root, "deploy/scripts/*"))):
        with open(path) as fh:
            check_shell(fh.read(), os.path.relpath(path, root))
    doc = os.path.join(root, "docs/DEPLOY.md")
    if f.check(os.path.exists(doc), "docs/DEPLOY.md is missing"):
        with open(doc) as fh:
            for block in dl.markdown_code_blocks(fh.read()):
                check_shell(block, "docs/DEPLOY.md")

    f.check(seen["server"] >= 5, f"found only {seen['server']} anorand-server invocations")
    f.check(seen["cli"] >= 5, f"found only {seen['cli']} anorand invocations")
    print(f"checked {seen['server']} anorand-server and {seen['cli']} anorand invocations")
    f.done()


if __name__ == "__main__":
    main()
