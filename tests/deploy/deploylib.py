"""Helpers shared by the deploy/ checks: rendering the kustomize overlays,
reading the Dockerfile and compose file, resolving --flagfile references,
finding anorand / anorand-server invocations in shell text, and the flags
the built binaries accept."""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys

import yaml

SKIP = 77
OVERLAYS = ("single", "scaled", "trainer")
SERVER_NAMES = {"anorand-server"}
# Abseil's usage flags: accepted by every absl program, not in --helpfull.
ABSL_USAGE_FLAGS = {"help", "helpfull", "helpshort", "helppackage", "version", "only_check_args"}
CLI_NAMES = {"anorand"}


class Failures:
    """Collects failed checks; `done()` prints them and exits 1 if any."""

    def __init__(self, name):
        self.name = name
        self.errors = []
        self.checks = 0

    def check(self, ok, message):
        self.checks += 1
        if not ok:
            self.errors.append(message)
        return ok

    def done(self):
        for e in self.errors:
            print(f"FAIL: {e}")
        print(f"{self.name}: {self.checks - len(self.errors)} of {self.checks} checks passed")
        sys.exit(1 if self.errors else 0)


def skip(message):
    print(f"SKIP: {message}")
    sys.exit(SKIP)


# ---- kustomize -------------------------------------------------------------

def kubectl_kustomize():
    """The kubectl binary if it has a kustomize that understands this layout
    (v4 or later: components, labels, patches with targets), else None."""
    if os.environ.get("DEPLOY_TEST_NO_KUBECTL"):
        return None
    kubectl = shutil.which("kubectl")
    if not kubectl:
        return None
    try:
        out = subprocess.run([kubectl, "version", "--client", "-o", "json"],
                             capture_output=True, text=True, timeout=20).stdout
        version = json.loads(out).get("kustomizeVersion", "")
    except (subprocess.SubprocessError, ValueError):
        return None
    m = re.match(r"v(\d+)", version)
    if not m or int(m.group(1)) < 4:
        return None
    return kubectl


def render(kubectl, path):
    """Rendered documents of one kustomization directory."""
    r = subprocess.run([kubectl, "kustomize", path], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {path} failed:\n{r.stderr}")
    return [d for d in yaml.safe_load_all(r.stdout) if d]


def load_yaml_docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def by_kind(docs, kind):
    return [d for d in docs if d.get("kind") == kind]


def find(docs, kind, name):
    for d in docs:
        if d.get("kind") == kind and d.get("metadata", {}).get("name") == name:
            return d
    return None


def labels_match(selector, labels):
    return all(labels.get(k) == v for k, v in (selector or {}).items())


# ---- flags -----------------------------------------------------------------

def server_flags(server):
    """{flag: default} of every flag anorand-server accepts (--helpfull)."""
    out = subprocess.run([server, "--helpfull"], capture_output=True, text=True, timeout=20)
    text = out.stdout + out.stderr
    flags = {}
    for m in re.finditer(r"^\s+--([A-Za-z0-9_]+) \((.*?)\);\s+default: (.*?);\s*$",
                         text, re.M | re.S):
        flags[m.group(1)] = m.group(3).strip().strip('"')
    # Flags whose description the regex could not pair still count as known.
    for m in re.finditer(r"^\s+--([A-Za-z0-9_]+)\b", text, re.M):
        flags.setdefault(m.group(1), None)
    if "grpc_address" not in flags:
        raise RuntimeError(f"{server} --helpfull lists no --grpc_address:\n{text[:2000]}")
    return flags


def cli_commands(cli):
    """{command: set of flags} of the anorand CLI (`anorand C --help`)."""
    top = subprocess.run([cli, "--help"], capture_output=True, text=True, timeout=20).stdout
    commands = {}
    section = False
    for line in top.splitlines():
        if line.strip().endswith(":") and not line.startswith(" "):
            section = True
            continue
        m = re.match(r"^  ([a-z][a-z-]*)\s{2,}", line)
        if section and m:
            commands[m.group(1)] = set()
    for c in commands:
        text = subprocess.run([cli, c, "--help"], capture_output=True, text=True,
                              timeout=20).stdout
        commands[c] = set(re.findall(r"^\s+--([a-z0-9-]+)\b", text, re.M)) | {"help"}
    if "fit" not in commands or "data" not in commands["fit"]:
        raise RuntimeError(f"cannot read the commands of {cli} --help:\n{top}")
    return commands


def flag_name(token):
    """'--model_dir=/models' -> 'model_dir'; None for a non-flag."""
    if not token.startswith("--") or token == "--":
        return None
    return token[2:].split("=", 1)[0]


def parse_flagfile(text):
    """Flag tokens of an absl flag file (one a line, '#' comments)."""
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.strip().startswith("#")]


def flag_value(tokens, name, default=None):
    """The value the last --name=VALUE in tokens sets (absl: later wins)."""
    value = default
    for t in tokens:
        if t.startswith(f"--{name}="):
            value = t.split("=", 1)[1]
    return value


def port_of(address):
    return int(address.rsplit(":", 1)[1])


# ---- shell text ------------------------------------------------------------

def logical_lines(text):
    """Shell lines with backslash continuations joined."""
    return re.sub(r"\\\n", " ", text).splitlines()


def shell_segments(line):
    """Simple commands of one shell line: token lists split at operators."""
    lx = shlex.shlex(line, posix=True, punctuation_chars=True)
    lx.commenters = "#"
    lx.wordchars += "$@%+:,{}[]^!"
    try:
        tokens = list(lx)
    except ValueError:
        return []
    segments, cur = [], []
    for t in tokens:
        if t and all(ch in "();<>|&" for ch in t):
            segments.append(cur)
            cur = []
        else:
            cur.append(t)
    segments.append(cur)
    return [s for s in segments if s]


_PREFIX_WORDS = {"exec", "if", "then", "else", "elif", "do", "while", "until", "!", "time",
                 "command", "env", "sudo", "{"}


def _command_start(seg):
    """Index of the command word of a simple command (after keywords,
    VAR=value assignments and `timeout N`)."""
    i = 0
    while i < len(seg):
        t = seg[i]
        if t in _PREFIX_WORDS or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", t):
            i += 1
        elif t == "timeout" and i + 1 < len(seg):
            i += 2
        else:
            break
    return i


def _program(token):
    base = os.path.basename(token)
    return base if base in SERVER_NAMES | CLI_NAMES else None


def _invocation(seg):
    i = _command_start(seg)
    if i >= len(seg):
        return None
    cmd = seg[i]
    if _program(cmd):
        return (_program(cmd), seg[i + 1:])
    rest = seg[i + 1:]
    # kubectl exec POD -- CMD ...
    if cmd == "kubectl" and "exec" in rest and "--" in rest:
        inner = rest[rest.index("--") + 1:]
        return _invocation(inner) if inner else None
    if cmd == "docker":
        words = [t for t in rest if not t.startswith("-")]
        # docker compose [-f F] exec|run [opts] SERVICE CMD ...
        if words[:1] == ["compose"]:
            for verb in ("exec", "run"):
                if verb in rest:
                    j = rest.index(verb) + 1
                    while j < len(rest) and rest[j].startswith("-"):
                        j += 1
                    inner = rest[j + 1:]
                    return _invocation(inner) if inner else None
            return None
        # docker exec [opts] CONTAINER CMD ...
        if words[:1] == ["exec"]:
            j = rest.index("exec") + 1
            while j < len(rest) and rest[j].startswith("-"):
                j += 1
            inner = rest[j + 1:]
            return _invocation(inner) if inner else None
        # docker run [opts] IMAGE [CMD ...]: an anorand image's entrypoint is
        # anorand-server, so what follows are server flags (or a program),
        # unless --entrypoint names another program.
        if words[:1] == ["run"]:
            entry = next((rest[k + 1] for k, t in enumerate(rest[:-1]) if t == "--entrypoint"), None)
            if entry is None:
                entry = next((t.split("=", 1)[1] for t in rest if t.startswith("--entrypoint=")), None)
            if entry is not None and not _program(entry):
                return None
            for j, t in enumerate(rest):
                if re.fullmatch(r"([\w.-]+/)*anorand:[\w.-]+", t):
                    after = rest[j + 1:]
                    if after and _program(after[0]):
                        return (_program(after[0]), after[1:])
                    return ("anorand-server", after)
    return None


def invocations_in_shell(text):
    """(program, argv after it) for every anorand / anorand-server command
    in shell text (also inside $(...), kubectl exec, docker compose exec and
    `docker run IMAGE FLAGS`)."""
    found = []
    for line in logical_lines(text):
        for seg in shell_segments(line):
            inv = _invocation(seg)
            if inv:
                found.append(inv)
    return found


def markdown_code_blocks(text):
    return re.findall(r"^[ \t]*```[a-z]*\n(.*?)^[ \t]*```", text, re.M | re.S)


# ---- Dockerfile ------------------------------------------------------------

def dockerfile_instructions(path):
    """[(stage_index, INSTRUCTION, args_text)] with continuations joined."""
    with open(path) as f:
        text = f.read()
    text = re.sub(r"\\\n", " ", text)
    out, stage = [], -1
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        parts = s.split(None, 1)
        instr, rest = parts[0].upper(), (parts[1] if len(parts) > 1 else "")
        if instr == "FROM":
            stage += 1
        out.append((stage, instr, rest))
    return out


def exec_form(args_text):
    """JSON exec form ["a", "b"] -> list, or None for shell form."""
    s = args_text.strip()
    if s.startswith("["):
        try:
            v = json.loads(s)
            if isinstance(v, list):
                return v
        except ValueError:
            return None
    return None


def dockerfile_stage_names(instrs):
    names = {}
    for stage, instr, rest in instrs:
        if instr == "FROM":
            m = re.search(r"\bAS\s+(\S+)", rest, re.I)
            names[stage] = m.group(1) if m else str(stage)
    return names


def is_anorand_image(image):
    return bool(image) and re.match(r"^([\w.-]+(:\d+)?/)*anorand(:[\w.-]+)?$", image) is not None


def compose_image(service):
    """A compose service's image with ${VAR:-default} replaced by the default."""
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}", r"\1", str(service.get("image", "")))


_COMPOSE_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*)|(\$))")


def compose_vars(value):
    """[(name, default or None)] of the ${VAR...} / $VAR references in a
    compose string ($$ is a literal $)."""
    out = []
    for m in _COMPOSE_VAR.finditer(str(value)):
        if m.group(6):
            continue
        name = m.group(1) or m.group(5)
        out.append((name, m.group(4) if m.group(3) == "-" else None))
    return out


def compose_expand(value, env):
    """A compose string as Compose interpolates it with the environment env:
    ${VAR}, $VAR, ${VAR:-default} (unset or empty), ${VAR-default} (unset),
    $$ -> $. A required ${VAR:?message} without a value raises KeyError."""
    def sub(m):
        if m.group(6):
            return "$"
        name = m.group(1) or m.group(5)
        colon, op, arg = m.group(2), m.group(3), m.group(4)
        val = env.get(name)
        missing = val is None or (colon == ":" and val == "")
        if op == "-" and missing:
            return arg
        if op == "?" and missing:
            raise KeyError(f"{name}: {arg}")
        return val or ""
    return _COMPOSE_VAR.sub(sub, str(value))
