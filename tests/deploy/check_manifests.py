#!/usr/bin/env python3
"""Structural checks of deploy/: the Dockerfile, compose.yaml and the
Kubernetes manifests agree with each other and with the server's defaults
(ports, model folder, drain deadline, probes, security context, scaling
objects, shared model store, training Job).

usage: check_manifests.py ROOT ANORAND_SERVER

With a kubectl whose kustomize is v4 or later, every overlay is rendered and
checked as applied; without one, the raw base and overlay documents are
checked with their flag files read from disk."""

import glob
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploylib as dl  # noqa: E402

f = dl.Failures("deploy manifests")
DOCKER_DEFAULT_STOP_SECONDS = 10


def seconds(text):
    """'15s' / '1m30s' / '15' -> seconds."""
    total, text = 0.0, str(text)
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    for n, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text):
        total += float(n) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return total


# ---- Dockerfile ------------------------------------------------------------

def check_dockerfile(root, defaults):
    path = os.path.join(root, "deploy/Dockerfile")
    instrs = dl.dockerfile_instructions(path)
    args = {}
    for stage, instr, rest in instrs:
        if instr == "ARG" and stage < 0 and "=" in rest:
            k, v = rest.split("=", 1)
            args[k.strip()] = v.strip()
    froms = [(s, rest) for s, i, rest in instrs if i == "FROM"]
    f.check(len(froms) >= 2, "Dockerfile: multi-stage (a build and a runtime stage)")
    for s, rest in froms:
        image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), rest.split()[0])
        f.check(image == "debian:bookworm-slim", f"Dockerfile: stage {s} is FROM {image}, "
                                                 "not debian:bookworm-slim")
    last = froms[-1][0]
    build_runs = " ".join(rest for s, i, rest in instrs if i == "RUN" and s < last)
    f.check("scripts/install-deps" in build_runs, "Dockerfile: the build stage runs scripts/install-deps")
    f.check("scripts/build" in build_runs or "cmake" in build_runs,
            "Dockerfile: the build stage builds with scripts/build (CI's build)")
    f.check("ANORAND_BUILD_TESTS=OFF" in build_runs, "Dockerfile: the image build leaves the tests out")
    runtime = [(i, rest) for s, i, rest in instrs if s == last]
    get = lambda name: [rest for i, rest in runtime if i == name]  # noqa: E731

    users = get("USER")
    f.check(users and users[-1].split(":")[0] not in ("root", "0"),
            f"Dockerfile: runtime USER is non-root (got {users})")
    f.check(users and re.fullmatch(r"\d+(:\d+)?", users[-1]),
            "Dockerfile: USER is numeric, so Kubernetes runAsNonRoot can verify it")
    entry = dl.exec_form(get("ENTRYPOINT")[-1]) if get("ENTRYPOINT") else None
    cmd = dl.exec_form(get("CMD")[-1]) if get("CMD") else None
    f.check(entry == ["/usr/local/bin/anorand-server"],
            f"Dockerfile: ENTRYPOINT [\"/usr/local/bin/anorand-server\"] in exec form (got {entry})")
    f.check(cmd is not None, "Dockerfile: CMD in exec form (default server flags)")
    cmd = cmd or []
    grpc_port = dl.port_of(dl.flag_value(cmd, "grpc_address", defaults["grpc_address"]))
    metrics_port = dl.port_of(dl.flag_value(cmd, "metrics_address", defaults["metrics_address"]))
    model_dir = dl.flag_value(cmd, "model_dir", defaults["model_dir"])
    drain = float(dl.flag_value(cmd, "drain_seconds", defaults["drain_seconds"]))
    f.check(grpc_port == dl.port_of(defaults["grpc_address"]),
            f"Dockerfile: gRPC port {grpc_port} is the server's default")
    exposed = {int(p.split("/")[0]) for e in get("EXPOSE") for p in e.split()}
    f.check(grpc_port in exposed, f"Dockerfile: EXPOSE {grpc_port} (gRPC); exposed {exposed}")
    f.check(metrics_port in exposed, f"Dockerfile: EXPOSE {metrics_port} (metrics); exposed {exposed}")
    vols = [v for e in get("VOLUME") for v in (dl.exec_form(e) or e.split())]
    f.check(model_dir in vols, f"Dockerfile: VOLUME {model_dir} (the --model_dir); got {vols}")
    f.check(model_dir.startswith("/"), "Dockerfile: --model_dir is absolute")
    f.check(get("STOPSIGNAL") == ["SIGTERM"], "Dockerfile: STOPSIGNAL SIGTERM")
    f.check(drain < DOCKER_DEFAULT_STOP_SECONDS,
            f"Dockerfile: --drain_seconds {drain} fits `docker stop`'s default "
            f"{DOCKER_DEFAULT_STOP_SECONDS} s before SIGKILL")
    hc = get("HEALTHCHECK")
    argv = dl.exec_form(hc[-1].split("CMD", 1)[1]) if hc and "CMD" in hc[-1] else None
    ok = argv and os.path.basename(argv[0]) == "anorand" and argv[1] == "health"
    f.check(ok, f"Dockerfile: HEALTHCHECK runs `anorand health` in exec form (got {argv})")
    if ok:
        addr = dl.flag_value([f"{a}={b}" for a, b in zip(argv, argv[1:]) if a.startswith("--")],
                             "address", "localhost:50051")
        f.check(dl.port_of(addr) == grpc_port, f"Dockerfile: HEALTHCHECK asks port {grpc_port}")
        m = re.search(r"--timeout=(\d+)s", hc[-1])
        t = dl.flag_value([f"{a}={b}" for a, b in zip(argv, argv[1:]) if a.startswith("--")],
                          "timeout", "30")
        f.check(m and float(t) < int(m.group(1)),
                "Dockerfile: the health call's --timeout is below HEALTHCHECK --timeout")
    copies = " ".join(rest for i, rest in runtime if i == "COPY")
    for b in ("anorand-server", "anorand "):
        f.check(f"/{b}" in copies + " ", f"Dockerfile: runtime stage copies {b.strip()}")
    return {"grpc_port": grpc_port, "metrics_port": metrics_port, "model_dir": model_dir}


# ---- compose ---------------------------------------------------------------

def check_compose(root, defaults, image):
    path = os.path.join(root, "deploy/compose.yaml")
    c = dl.load_yaml_docs(path)[0]
    services = c.get("services", {})
    for name in ("anorand", "seed", "prometheus", "grafana"):
        f.check(name in services, f"compose: service {name}")
    s = services.get("anorand", {})
    cmd = s.get("command") or []
    grpc_port = dl.port_of(dl.flag_value(cmd, "grpc_address", defaults["grpc_address"]))
    metrics_port = dl.port_of(dl.flag_value(cmd, "metrics_address", defaults["metrics_address"]))
    model_dir = dl.flag_value(cmd, "model_dir", defaults["model_dir"])
    drain = float(dl.flag_value(cmd, "drain_seconds", defaults["drain_seconds"]))
    f.check(model_dir == image["model_dir"], "compose: --model_dir is the image's volume")
    published = {str(p).rsplit(":", 1)[-1].split("/")[0] for p in s.get("ports", [])}
    f.check(str(grpc_port) in published, f"compose: publishes container port {grpc_port}")
    f.check(str(metrics_port) in published, f"compose: publishes container port {metrics_port}")
    mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in s.get("volumes", [])}
    f.check(model_dir in mounts, f"compose: a volume at {model_dir}")
    f.check(seconds(s.get("stop_grace_period", DOCKER_DEFAULT_STOP_SECONDS)) > drain,
            f"compose: stop_grace_period is above --drain_seconds {drain}")
    f.check("entrypoint" not in s, "compose: the server keeps the image's exec-form ENTRYPOINT")
    f.check(s.get("read_only") is True, "compose: the server's root file system is read-only")
    f.check(not s.get("profiles"), "compose: anorand runs without a --profile")
    check_compose_training(services, s, defaults, model_dir, mounts)

    seed = services.get("seed", {})
    f.check(dl.compose_image(seed) == dl.compose_image(s), "compose: seed uses the server's image")
    seed_mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in seed.get("volumes", [])}
    seed_store = (seed.get("environment") or {}).get("ANORAND_MODEL_DIR", "/models")
    f.check(seed_mounts.get(seed_store) == mounts.get(model_dir) and mounts.get(model_dir),
            "compose: seed publishes into the server's model volume")
    f.check(os.path.basename((seed.get("entrypoint") or [""])[0]) == "seed-demo",
            "compose: seed runs deploy/scripts/seed-demo")
    dep = (s.get("depends_on") or {}).get("seed", {})
    f.check(dep.get("condition") == "service_completed_successfully",
            "compose: the server starts after seed has completed")
    f.check(seed.get("restart", "no") == "no", "compose: seed is one-shot")

    prom = services.get("prometheus", {})
    pvols = [str(v) for v in prom.get("volumes", [])]
    f.check(any(v.startswith("./prometheus:") for v in pvols), "compose: Prometheus mounts deploy/prometheus")
    cfg = dl.flag_value(prom.get("command") or [], "config.file", "")
    f.check(cfg.endswith("/prometheus.yml"), "compose: Prometheus reads prometheus.yml")
    graf = services.get("grafana", {})
    gvols = [str(v) for v in graf.get("volumes", [])]
    f.check(any(v.startswith("./grafana:") for v in gvols), "compose: Grafana mounts deploy/grafana")

    # The files another change delivers: when they are there, they must fit.
    prom_yml = os.path.join(root, "deploy/prometheus/prometheus.yml")
    if os.path.exists(prom_yml):
        with open(prom_yml) as fh:
            text = fh.read()
        f.check(f"anorand:{metrics_port}" in text,
                f"deploy/prometheus/prometheus.yml scrapes anorand:{metrics_port} "
                "(the compose service name and metrics port)")
    graf_dir = os.path.join(root, "deploy/grafana")
    if os.path.isdir(graf_dir):
        env = graf.get("environment") or {}
        mount = next((v.split(":")[1] for v in gvols if v.startswith("./grafana:")), "")
        for key in ("GF_PATHS_PROVISIONING", "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"):
            p = env.get(key, "")
            if p.startswith(mount + "/"):
                f.check(os.path.exists(os.path.join(graf_dir, p[len(mount) + 1:])),
                        f"compose: {key}={p} exists as deploy/grafana/{p[len(mount) + 1:]}")


def under_mount(path, mounts):
    """The mount point (of mounts) that path is on, or None."""
    hits = [m for m in mounts if path == m or path.startswith(m.rstrip("/") + "/")]
    return max(hits, key=len) if hits else None


def jobs_dir_of(flags, defaults):
    """The --jobs_dir a server with these flags uses (default <model_dir>/.jobs)."""
    model_dir = dl.flag_value(flags, "model_dir", defaults["model_dir"])
    return os.path.normpath(dl.flag_value(flags, "jobs_dir", "") or model_dir + "/.jobs")


def check_compose_training(services, s, defaults, model_dir, mounts):
    """Training in-process by default; `--profile trainer` adds a
    training-only server on the same model volume with its own job records."""
    for name, svc in services.items():
        if dl.compose_image(svc) != dl.compose_image(s):
            continue
        for t in (svc.get("command") or []):
            for var, default in dl.compose_vars(t):
                f.check(default not in (None, ""),
                        f"compose: service {name}: {t} needs a non-empty default for ${var} "
                        "(the stack must start with no variables set)")
    cmd = s.get("command") or []
    plain = [dl.compose_expand(t, {}) for t in cmd]
    f.check(dl.flag_value(plain, "max_queued_jobs", defaults["max_queued_jobs"])
            == defaults["max_queued_jobs"],
            f"compose: with no variables set, anorand trains in-process with the server's "
            f"default --max_queued_jobs={defaults['max_queued_jobs']}")
    mq = [t for t in cmd if dl.flag_name(t) == "max_queued_jobs"]
    switch = [v for t in mq for v, _ in dl.compose_vars(t)]
    if f.check(len(mq) == 1 and len(switch) == 1,
               "compose: anorand's --max_queued_jobs comes from one variable (0 beside the trainer)"):
        zero = [dl.compose_expand(t, {switch[0]: "0"}) for t in cmd]
        f.check(dl.flag_value(zero, "max_queued_jobs") == "0",
                f"compose: {switch[0]}=0 gives anorand --max_queued_jobs=0")

    t = services.get("trainer")
    if not f.check(t is not None, "compose: service trainer (the separate trainer)"):
        return
    f.check(t.get("profiles") == ["trainer"], "compose: trainer runs only with --profile trainer")
    f.check(dl.compose_image(t) == dl.compose_image(s), "compose: trainer uses the server's image")
    f.check("entrypoint" not in t, "compose: trainer runs the image's ENTRYPOINT (anorand-server)")
    tcmd = [dl.compose_expand(x, {}) for x in (t.get("command") or [])]
    tmodel = dl.flag_value(tcmd, "model_dir", defaults["model_dir"])
    tmounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in t.get("volumes", [])}
    f.check(tmounts.get(tmodel) is not None and tmounts.get(tmodel) == mounts.get(model_dir),
            "compose: trainer's --model_dir is anorand's model volume (it publishes there)")
    f.check(not any(str(v).split(":")[1] == tmodel and str(v).endswith(":ro")
                    for v in t.get("volumes", [])), "compose: trainer's model volume is writable")
    serving_jobs, trainer_jobs = jobs_dir_of(plain, defaults), jobs_dir_of(tcmd, defaults)
    f.check(trainer_jobs != serving_jobs,
            f"compose: trainer has its own --jobs_dir, not anorand's {serving_jobs} (a server "
            "marks the unfinished records of its --jobs_dir FAILED when it starts)")
    f.check(under_mount(trainer_jobs, tmounts) is not None,
            f"compose: trainer's --jobs_dir {trainer_jobs} is on a volume (records outlive the container)")
    f.check(int(dl.flag_value(tcmd, "max_queued_jobs", defaults["max_queued_jobs"])) > 0,
            "compose: trainer accepts training jobs")
    data = dl.flag_value(tcmd, "data_dir", "")
    if data:
        f.check(under_mount(data, tmounts) is not None, f"compose: trainer's --data_dir {data} is a volume")
    for key in ("read_only", "tmpfs", "cap_drop", "security_opt"):
        f.check(t.get(key) == s.get(key), f"compose: trainer has anorand's {key} ({s.get(key)})")
    drain = float(dl.flag_value(tcmd, "drain_seconds", defaults["drain_seconds"]))
    f.check(seconds(t.get("stop_grace_period", DOCKER_DEFAULT_STOP_SECONDS)) > drain,
            f"compose: trainer's stop_grace_period is above its --drain_seconds {drain}")
    host = lambda svc: {str(p).rsplit(":", 1)[0] for p in svc.get("ports", [])}  # noqa: E731
    f.check(not host(t) & host(s), "compose: trainer publishes other host ports than anorand")


# ---- Kubernetes ------------------------------------------------------------

def pod_spec(doc):
    spec = doc.get("spec", {})
    if doc.get("kind") == "Pod":
        return spec
    return spec.get("template", {}).get("spec")


def effective_flags(where, container, pod, configmaps, flagfiles_on_disk):
    """The flag tokens a server container runs with, flag files expanded."""
    tokens = []
    mounts = {}
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    for m in container.get("volumeMounts", []):
        v = vols.get(m["name"], {})
        if "configMap" in v:
            mounts[m["mountPath"]] = v["configMap"]["name"]
    for t in container.get("args", []):
        if dl.flag_name(t) == "flagfile":
            for path in t.split("=", 1)[1].split(","):
                folder, key = os.path.split(path)
                data = configmaps.get(mounts.get(folder), {}).get(key)
                if data is None:
                    data = flagfiles_on_disk.get(key)
                if f.check(data is not None, f"{where}: flag file {path} is not mounted"):
                    tokens += dl.parse_flagfile(data)
        else:
            tokens.append(t)
    return tokens


def check_server_pod(where, doc, docs, defaults, flagfiles_on_disk, component):
    pod = pod_spec(doc)
    configmaps = {d["metadata"]["name"]: d.get("data", {}) for d in dl.by_kind(docs, "ConfigMap")}
    containers = [c for c in pod.get("containers", []) if dl.is_anorand_image(c.get("image", ""))]
    if not f.check(len(containers) == 1, f"{where}: one anorand container"):
        return None
    c = containers[0]
    flags = effective_flags(where, c, pod, configmaps, flagfiles_on_disk)
    grpc_port = dl.port_of(dl.flag_value(flags, "grpc_address", defaults["grpc_address"]))
    metrics_port = dl.port_of(dl.flag_value(flags, "metrics_address", defaults["metrics_address"]))
    drain = float(dl.flag_value(flags, "drain_seconds", defaults["drain_seconds"]))
    model_dir = dl.flag_value(flags, "model_dir", defaults["model_dir"])
    require = dl.flag_value(flags, "require_models", "")
    f.check(not c.get("command"), f"{where}: runs the image's ENTRYPOINT (anorand-server)")

    ports = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
    f.check(ports.get("grpc") == grpc_port, f"{where}: containerPort grpc = {grpc_port} (--grpc_address)")
    f.check(ports.get("metrics") == metrics_port,
            f"{where}: containerPort metrics = {metrics_port} (--metrics_address)")
    ann = doc["spec"]["template"]["metadata"].get("annotations", {})
    f.check(ann.get("prometheus.io/scrape") == "true", f"{where}: prometheus.io/scrape annotation")
    f.check(ann.get("prometheus.io/port") == str(metrics_port), f"{where}: prometheus.io/port = {metrics_port}")
    f.check(ann.get("prometheus.io/path") == "/metrics", f"{where}: prometheus.io/path = /metrics")

    probes = {k: c.get(k) for k in ("startupProbe", "livenessProbe", "readinessProbe")}
    for k, p in probes.items():
        if f.check(p and "grpc" in p, f"{where}: {k} is a native gRPC probe"):
            f.check(p["grpc"].get("port") == grpc_port, f"{where}: {k} asks port {grpc_port}")
            f.check(p.get("timeoutSeconds", 1) < p.get("periodSeconds", 10),
                    f"{where}: {k} timeout below its period")
    if probes["livenessProbe"] and "grpc" in probes["livenessProbe"]:
        f.check(probes["livenessProbe"]["grpc"].get("service", "") == "",
                f"{where}: liveness asks the server as a whole (service \"\")")
    if probes["startupProbe"] and "grpc" in probes["startupProbe"]:
        sp = probes["startupProbe"]
        f.check(sp.get("failureThreshold", 3) * sp.get("periodSeconds", 10) >= 60,
                f"{where}: the startup probe allows a minute or more to load the store")
    want = {"server": "anorand.v1.Scoring", "trainer": "anorand.v1.Training"}[component]
    if probes["readinessProbe"] and "grpc" in probes["readinessProbe"]:
        f.check(probes["readinessProbe"]["grpc"].get("service") == want,
                f"{where}: readiness asks {want}")

    pre = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    sleep = float(pre[1]) if len(pre) == 2 and os.path.basename(pre[0]) == "sleep" else None
    f.check(sleep is not None and sleep >= 1, f"{where}: preStop sleeps (got {pre})")
    grace = pod.get("terminationGracePeriodSeconds", 30)
    f.check(sleep is not None and grace >= sleep + drain + 1,
            f"{where}: terminationGracePeriodSeconds {grace} covers preStop {sleep} + "
            f"--drain_seconds {drain} + 1 s")

    res = c.get("resources", {})
    for kind in ("requests", "limits"):
        for r in ("cpu", "memory"):
            f.check(r in res.get(kind, {}), f"{where}: resources.{kind}.{r}")

    psc, sc = pod.get("securityContext", {}), c.get("securityContext", {})
    f.check(psc.get("runAsNonRoot") is True or sc.get("runAsNonRoot") is True, f"{where}: runAsNonRoot")
    f.check(psc.get("runAsUser", sc.get("runAsUser")) not in (0, None), f"{where}: runAsUser non-zero")
    f.check(sc.get("allowPrivilegeEscalation") is False, f"{where}: allowPrivilegeEscalation false")
    f.check(sc.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem")
    f.check("ALL" in sc.get("capabilities", {}).get("drop", []), f"{where}: capabilities drop ALL")
    f.check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{where}: seccomp RuntimeDefault")
    f.check(pod.get("automountServiceAccountToken") is False, f"{where}: no service account token")

    vols = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = {m["mountPath"]: vols.get(m["name"], {}) for m in c.get("volumeMounts", [])}
    store = mounts.get(model_dir, {})
    claim = store.get("persistentVolumeClaim", {}).get("claimName")
    f.check(claim is not None, f"{where}: --model_dir {model_dir} is a PersistentVolumeClaim mount")
    pvc = dl.find(docs, "PersistentVolumeClaim", claim) if claim else None
    if f.check(pvc is not None, f"{where}: PVC {claim} is part of the manifests"):
        f.check("ReadWriteMany" in pvc["spec"].get("accessModes", []),
                f"{where}: model store PVC {claim} is ReadWriteMany (shared by all replicas)")
    f.check("/tmp" in mounts, f"{where}: a writable /tmp (the root file system is read-only)")
    env = {e["name"]: e for e in c.get("env", [])}
    tok = env.get("ANORAND_AUTH_TOKEN", {}).get("valueFrom", {}).get("secretKeyRef")
    token_file = dl.flag_value(flags, "admin_token_file", "")
    if token_file:
        folder, key = os.path.split(token_file)
        secret = mounts.get(folder, {}).get("secret")
        tok = secret if secret and not secret.get("optional") and (
            not secret.get("items") or any(i.get("path") == key for i in secret["items"])) else None
    f.check(tok is not None, f"{where}: the admin token comes from a (required) Secret "
                             "(--admin_token_file on a Secret volume, or ANORAND_AUTH_TOKEN)")
    # Where the job records live: (claim, path inside it) on a PVC.
    jobs_dir = jobs_dir_of(flags, defaults)
    jm = under_mount(jobs_dir, mounts)
    jobs_claim = mounts.get(jm, {}).get("persistentVolumeClaim", {}).get("claimName") if jm else None
    jobs_at = (jobs_claim or f"non-PVC volume at {jm}",
               os.path.relpath(jobs_dir, jm) if jm else jobs_dir)
    return {"grpc_port": grpc_port, "metrics_port": metrics_port, "require": require,
            "labels": doc["spec"]["template"]["metadata"].get("labels", {}), "claim": claim,
            "queue": dl.flag_value(flags, "max_queued_jobs", defaults["max_queued_jobs"]),
            "jobs_dir": jobs_dir, "jobs_at": jobs_at, "jobs_claim": jobs_claim}


def check_overlay(name, docs, defaults, flagfiles_on_disk):
    where = f"overlay {name}"
    ns = dl.by_kind(docs, "Namespace")
    if f.check(len(ns) == 1, f"{where}: a Namespace"):
        f.check(ns[0]["metadata"].get("labels", {}).get("pod-security.kubernetes.io/enforce") == "restricted",
                f"{where}: the namespace enforces the restricted Pod Security Standard")
    deps = dl.by_kind(docs, "Deployment")
    server = dl.find(docs, "Deployment", "anorand")
    if not f.check(server is not None, f"{where}: Deployment anorand"):
        return
    s = check_server_pod(f"{where} Deployment/anorand", server, docs, defaults, flagfiles_on_disk, "server")
    if s is None:
        return
    f.check(server["spec"]["selector"]["matchLabels"].items() <= s["labels"].items(),
            f"{where}: the Deployment's selector matches its pods")

    svc = dl.find(docs, "Service", "anorand")
    if f.check(svc is not None, f"{where}: Service anorand"):
        ports = {p["name"]: p for p in svc["spec"]["ports"]}
        f.check(dl.labels_match(svc["spec"]["selector"], s["labels"]), f"{where}: Service anorand selects the pods")
        f.check("grpc" in ports and ports["grpc"].get("targetPort") in ("grpc", s["grpc_port"]),
                f"{where}: Service anorand has the gRPC port")
        f.check("metrics" in ports and ports["metrics"].get("targetPort") in ("metrics", s["metrics_port"]),
                f"{where}: Service anorand has the metrics port")
    headless = [d for d in dl.by_kind(docs, "Service") if d["spec"].get("clusterIP") == "None"]
    f.check(any(dl.labels_match(h["spec"]["selector"], s["labels"]) for h in headless),
            f"{where}: a headless Service over the serving pods (client-side round robin)")

    hpas = dl.by_kind(docs, "HorizontalPodAutoscaler")
    pdbs = dl.by_kind(docs, "PodDisruptionBudget")
    if name == "single":
        f.check(server["spec"].get("replicas") == 1, f"{where}: one replica")
        f.check(not hpas and not pdbs, f"{where}: no autoscaler or disruption budget")
    else:
        f.check("replicas" not in server["spec"], f"{where}: the autoscaler owns the replica count")
        if f.check(len(hpas) == 1, f"{where}: a HorizontalPodAutoscaler"):
            h = hpas[0]
            f.check(h["apiVersion"] == "autoscaling/v2", f"{where}: HPA is autoscaling/v2")
            f.check(h["spec"]["scaleTargetRef"].get("name") == "anorand"
                    and h["spec"]["scaleTargetRef"].get("kind") == "Deployment",
                    f"{where}: HPA scales Deployment anorand")
            f.check(any(m.get("type") == "Resource" and m["resource"]["name"] == "cpu"
                        for m in h["spec"].get("metrics", [])), f"{where}: HPA on CPU")
            f.check(h["spec"].get("minReplicas", 1) >= 2, f"{where}: HPA keeps two replicas or more")
        if f.check(len(pdbs) == 1, f"{where}: a PodDisruptionBudget"):
            p = pdbs[0]
            f.check(p["apiVersion"] == "policy/v1", f"{where}: PDB is policy/v1")
            f.check(dl.labels_match(p["spec"]["selector"].get("matchLabels"), s["labels"]),
                    f"{where}: PDB selects the serving pods")
        f.check(bool(s["require"]), f"{where}: serving replicas set --require_models")
        f.check(s["queue"] == "0", f"{where}: serving replicas do not train (--max_queued_jobs=0; "
                                   f"got {s['queue']})")

    trainer = dl.find(docs, "Deployment", "anorand-trainer")
    if name == "trainer":
        if f.check(trainer is not None, f"{where}: Deployment anorand-trainer"):
            t = check_server_pod(f"{where} Deployment/anorand-trainer", trainer, docs, defaults,
                                 flagfiles_on_disk, "trainer")
            if t:
                f.check(not t["require"], f"{where}: the trainer sets no --require_models")
                f.check(t["claim"] == s["claim"], f"{where}: the trainer shares the model store")
                f.check(trainer["spec"].get("replicas") == 1, f"{where}: one trainer")
                f.check(trainer["spec"].get("strategy", {}).get("type") == "Recreate",
                        f"{where}: the trainer is replaced with Recreate (one pod owns its --jobs_dir)")
                f.check(t["queue"] not in ("0", None), f"{where}: the trainer accepts training jobs")
                f.check(t["jobs_at"] != s["jobs_at"],
                        f"{where}: the trainer's --jobs_dir {t['jobs_dir']} is not the serving "
                        f"replicas' {s['jobs_dir']} on the same volume (a server marks the "
                        "unfinished records of its --jobs_dir FAILED when it starts)")
                f.check(t["jobs_claim"] is not None,
                        f"{where}: the trainer's --jobs_dir {t['jobs_dir']} is on a PVC "
                        "(records outlive the pod)")
                f.check(not dl.labels_match(svc["spec"]["selector"], t["labels"]),
                        f"{where}: the trainer is not behind Service anorand")
                tsvc = [d for d in dl.by_kind(docs, "Service")
                        if dl.labels_match(d["spec"]["selector"], t["labels"])]
                f.check(tsvc, f"{where}: a Service for the trainer")
    else:
        f.check(trainer is None and len(deps) == 1, f"{where}: only the serving Deployment")


def check_job(root, path, base_docs):
    where = os.path.relpath(path, root)
    docs = dl.load_yaml_docs(path)
    jobs = dl.by_kind(docs, "Job")
    if not f.check(len(jobs) == 1, f"{where}: one Job"):
        return
    job = jobs[0]
    pod = job["spec"]["template"]["spec"]
    c = pod["containers"][0]
    f.check(pod.get("restartPolicy") in ("Never", "OnFailure"), f"{where}: restartPolicy")
    psc, sc = pod.get("securityContext", {}), c.get("securityContext", {})
    f.check(psc.get("runAsNonRoot") is True, f"{where}: runAsNonRoot")
    f.check(sc.get("allowPrivilegeEscalation") is False and sc.get("readOnlyRootFilesystem") is True
            and "ALL" in sc.get("capabilities", {}).get("drop", []), f"{where}: container security context")
    env = {e["name"]: e.get("value") for e in c.get("env", [])}
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = {m["mountPath"]: vols[m["name"]] for m in c.get("volumeMounts", [])}
    for var, pvc in (("ANORAND_MODEL_DIR", "anorand-models"), ("DATA_DIR", "anorand-data")):
        claim = mounts.get(env.get(var), {}).get("persistentVolumeClaim", {}).get("claimName")
        f.check(claim == pvc, f"{where}: ${var} ({env.get(var)}) is the {pvc} volume")
        f.check(dl.find(base_docs, "PersistentVolumeClaim", pvc) is not None,
                f"{where}: PVC {pvc} is in deploy/k8s/base")
    script = "\n".join(c.get("args", []))
    fits = [a for p, a in dl.invocations_in_shell(script) if p == "anorand" and a[:1] == ["fit"]]
    if f.check(len(fits) == 1, f"{where}: runs `anorand fit`"):
        out = dl.flag_value([f"{x}={y}" for x, y in zip(fits[0], fits[0][1:])], "out", "")
        f.check(out.endswith("/model.anorand"), f"{where}: fit writes .../model.anorand")
        f.check("--threads" in fits[0], f"{where}: fit gets --threads (its default is every core "
                                        "of the node, not the pod's CPUs)")
    f.check(re.search(r"\.incoming-\$\{?JOB_NAME", script) is not None,
            f"{where}: the model is staged in .incoming-$JOB_NAME")
    f.check("publish-model" in script, f"{where}: publishes with publish-model (atomic rename)")
    jn = next((e for e in c.get("env", []) if e["name"] == "JOB_NAME"), {})
    f.check(jn.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.labels['job-name']",
            f"{where}: JOB_NAME comes from the job-name label")


def main():
    root, server = sys.argv[1:3]
    if not os.access(server, os.X_OK):
        dl.skip(f"{server} is not built")
    sflags = dl.server_flags(server)
    defaults = {k: sflags.get(k) for k in ("grpc_address", "model_dir", "drain_seconds",
                                           "max_queued_jobs")}
    # Until the metrics flag exists, the port the metrics change documents.
    defaults["metrics_address"] = sflags.get("metrics_address") or "0.0.0.0:9464"
    f.check(dl.port_of(defaults["metrics_address"]) == 9464, "server: metrics default port is 9464")

    image = check_dockerfile(root, defaults)
    check_compose(root, defaults, image)

    k8s = os.path.join(root, "deploy/k8s")
    flagfiles = {}
    for p in glob.glob(os.path.join(k8s, "**", "*.flags"), recursive=True):
        with open(p) as fh:
            flagfiles.setdefault(os.path.basename(p), fh.read())
    kubectl = dl.kubectl_kustomize()
    if kubectl:
        base_docs = dl.render(kubectl, os.path.join(k8s, "base"))
        for o in dl.OVERLAYS:
            check_overlay(o, dl.render(kubectl, os.path.join(k8s, "overlays", o)), defaults, {})
    else:
        print("note: no kubectl with kustomize >= v4: checking raw documents, flag files from disk")
        base_docs = []
        for p in sorted(glob.glob(os.path.join(k8s, "base", "*.yaml"))):
            if not p.endswith("kustomization.yaml"):
                base_docs += dl.load_yaml_docs(p)
        for p in sorted(glob.glob(os.path.join(k8s, "overlays", "*", "*.yaml"))):
            if p.endswith("kustomization.yaml"):
                continue
            for d in dl.load_yaml_docs(p):
                if d.get("kind") == "Deployment" and "template" in d.get("spec", {}) \
                        and "containers" in d["spec"]["template"].get("spec", {}):
                    check_server_pod(os.path.relpath(p, root), d, base_docs, defaults, flagfiles,
                                     d["metadata"]["labels"].get("app.kubernetes.io/component"))
        d = dl.find(base_docs, "Deployment", "anorand")
        if f.check(d is not None, "base: Deployment anorand"):
            check_server_pod("base Deployment/anorand", d, base_docs, defaults, flagfiles, "server")
    check_job(root, os.path.join(k8s, "jobs", "train-job.yaml"), base_docs)
    f.done()


if __name__ == "__main__":
    main()
