#!/usr/bin/env python3
"""The runtime stage of deploy/Dockerfile installs every Debian package whose
shared libraries the two binaries load: ldd on the built binaries, each
library mapped to its package with dpkg -S, and each package checked against
the runtime package list plus everything that list depends on (Depends and
Pre-Depends, recursively, first alternative: what apt installs), read from
this machine's dpkg database, where the build's libraries are installed.

usage: check_runtime_libs.py ROOT ANORAND_SERVER ANORAND_CLI"""

import os
import re
import shutil
import subprocess
import sys

SKIP = 77


def runtime_stage(dockerfile):
    text = re.sub(r"\\\n", " ", open(dockerfile).read())
    stages = re.split(r"^FROM\s", text, flags=re.M)
    return stages[-1]


def listed_packages(root):
    stage = runtime_stage(os.path.join(root, "deploy/Dockerfile"))
    listed = []
    if re.search(r"install-deps\s+--runtime", stage):
        script = open(os.path.join(root, "scripts/install-deps")).read()
        m = re.search(r"^RUNTIME_PKGS=\((.*?)\)", script, re.M | re.S)
        if not m:
            print("FAIL: scripts/install-deps has no RUNTIME_PKGS=(...)")
            sys.exit(1)
        pkgs = m.group(1).split()
        print(f"runtime stage: scripts/install-deps --runtime ({len(pkgs)} packages)")
        listed += pkgs
    for m in re.finditer(r"apt-get\s+install([^&;|]*)", stage):
        listed += [w for w in m.group(1).split() if not w.startswith("-")]
    return listed


def dependency_closure(listed):
    out = subprocess.run(["dpkg-query", "-W", "-f=${Package}\t${Depends}, ${Pre-Depends}\n"],
                         capture_output=True, text=True).stdout
    depends = {}
    for line in out.splitlines():
        pkg, _, deps = line.partition("\t")
        depends[pkg] = [re.sub(r"\(.*?\)|:any|\s", "", d.split("|")[0])
                        for d in deps.split(",") if d.strip()]
    closure, queue = set(), list(listed)
    while queue:
        p = queue.pop()
        if p in closure or not p:
            continue
        closure.add(p)
        if p not in depends:
            print(f"note: {p} is not installed here; its dependencies are not followed")
            continue
        queue += depends[p]
    return closure


def main():
    root, binaries = sys.argv[1], sys.argv[2:]
    for b in binaries:
        if not os.access(b, os.X_OK):
            print(f"SKIP: {b} is not built")
            sys.exit(SKIP)
    for tool in ("ldd", "dpkg", "dpkg-query"):
        if not shutil.which(tool):
            print(f"SKIP: no {tool}")
            sys.exit(SKIP)
    failures = []
    listed = listed_packages(root)
    if not listed:
        print("FAIL: the runtime stage of deploy/Dockerfile installs no packages")
        sys.exit(1)
    print("listed: " + " ".join(listed))
    closure = dependency_closure(listed)

    libs = set()
    for b in binaries:
        out = subprocess.run(["ldd", b], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if "not found" in line:
                failures.append(f"{b}: {line.strip()}")
            m = re.match(r"\s*(\S+) => (/\S+)", line) or re.match(r"\s*(/\S+) \(", line)
            if m:
                libs.add(m.group(m.lastindex))
    # Merged /usr: ldd says /lib/..., dpkg may know /usr/lib/... (or the target).
    candidates = {lib: [lib, os.path.realpath(lib), "/usr" + lib] for lib in libs}
    query = sorted({c for cs in candidates.values() for c in cs})
    out = subprocess.run(["dpkg", "-S"] + query, capture_output=True, text=True).stdout
    owner = {}
    for line in out.splitlines():
        if ": /" not in line or line.startswith("diversion"):
            continue
        pkgs, path = line.split(": /", 1)
        owner["/" + path] = pkgs.split(",")[0].split(":")[0].strip()
    needed = {}
    for lib in sorted(libs):
        pkg = next((owner[c] for c in candidates[lib] if c in owner), None)
        if pkg is None:
            failures.append(f"{lib} is loaded but no Debian package owns it")
            continue
        needed.setdefault(pkg, []).append(os.path.basename(lib))
    for pkg in sorted(needed):
        names = needed[pkg]
        shown = f"{len(names)} libraries" if len(names) > 4 else " ".join(names)
        if pkg in closure:
            how = "listed" if pkg in listed else "dependency of the list"
            print(f"ok   {pkg} ({how}): {shown}")
        else:
            failures.append(f"{pkg} is needed ({shown}) but neither listed nor a dependency of the list")
    for f in failures:
        print(f"FAIL: {f}")
    if failures:
        sys.exit(1)
    print(f"deploy runtime libs: {len(needed)} packages needed, all covered; directly needed and "
          f"not listed: {' '.join(sorted(set(needed) - set(listed))) or 'none'}")


if __name__ == "__main__":
    main()
