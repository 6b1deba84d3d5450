#!/usr/bin/env bash
# deploy/compose/ checked without a Docker engine (none runs on the build machine):
#
#   tests/contract/check_compose.sh [REPO]
#
# - compose.yaml, prometheus.yml and Grafana's provisioning files parse as YAML;
#   compose.yaml is valid against the Compose Specification's JSON schema
#   (deploy/compose/compose-spec.json, from compose-spec/compose-spec) when python3's
#   jsonschema is installed (Debian: python3-jsonschema), and names it when not;
# - every ${VAR} compose.yaml interpolates is in .env.example, every variable of
#   .env.example is used, and every secret there is a CHANGE_ME placeholder;
# - every $VAR of nats/dm.conf is in the nats service's environment, and its roles'
#   permissions are exactly deploy/stack.sh's (the stack the tests run against);
# - the workers' environment defines every ENV:NAME of deploy/config/*.json and examples/,
#   each host named there (DM_*_HOST, the URLs) is a service of the file, and each worker
#   has its own --name and host port;
# - images carry pinned version tags (no latest), depends_on names services, every file
#   the stack mounts or the Dockerfile copies exists;
# - the Dockerfile installs every -dev package of deploy/install-deps.sh the build needs,
#   and runs as a user other than root.
set -euo pipefail

ROOT=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)}

PY=python3
if ! python3 -c 'import yaml' 2>/dev/null; then
    # pyenv and friends may shadow Debian's python3, which has python3-yaml.
    if /usr/bin/python3 -c 'import yaml' 2>/dev/null; then
        PY=/usr/bin/python3
    else
        echo "compose: FAIL python3 cannot import yaml (Debian package: python3-yaml)"
        exit 1
    fi
fi

"$PY" - "$ROOT" <<'PY'
import json, os, re, sys
import yaml

root = sys.argv[1]
cdir = os.path.join(root, "deploy", "compose")
fail, notes = [], []

def load_yaml(rel):
    path = os.path.join(cdir, rel)
    try:
        with open(path) as f:
            return yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        fail.append(f"{rel}: {e}")
        return None

compose_text = open(os.path.join(cdir, "compose.yaml")).read()
doc = load_yaml("compose.yaml")
for rel in ("prometheus/prometheus.yml", "grafana/provisioning/datasources/prometheus.yaml",
            "grafana/provisioning/dashboards/dm-worker.yaml"):
    load_yaml(rel)
if doc is None:
    print("\n".join("  " + f for f in fail) + "\ncompose: FAIL")
    sys.exit(1)

# --- the Compose Specification's schema
try:
    import jsonschema
    schema = json.load(open(os.path.join(cdir, "compose-spec.json")))
    for e in sorted(jsonschema.Draft7Validator(schema).iter_errors(doc), key=lambda e: list(map(str, e.path))):
        fail.append(f"compose.yaml: schema: at {'/'.join(map(str, e.path)) or '(top)'}: {e.message[:300]}")
    notes.append("valid against the Compose Specification schema")
except ImportError:
    notes.append("schema NOT checked (python3 jsonschema missing: apt-get install python3-jsonschema)")

services = doc.get("services", {})

# --- interpolation against .env.example
env_example = {}
for line in open(os.path.join(cdir, ".env.example")):
    line = line.strip()
    if line and not line.startswith("#"):
        k, _, v = line.partition("=")
        env_example[k] = v
# YAML comments are not interpolated; $$ is a literal $.
uncommented = "\n".join(re.sub(r"(^|\s)#.*$", "", l) for l in compose_text.splitlines())
text_no_escapes = uncommented.replace("$$", "")
used = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text_no_escapes))
used |= set(re.findall(r"\$([A-Za-z_][A-Za-z0-9_]*)", text_no_escapes))
for v in sorted(used - set(env_example)):
    fail.append(f"compose.yaml uses ${{{v}}}, which .env.example does not define")
for v in sorted(set(env_example) - used):
    fail.append(f".env.example defines {v}, which compose.yaml never uses")
for k, v in env_example.items():
    if re.search(r"PASSWORD|KEY|SECRET", k) and v != "CHANGE_ME":
        fail.append(f".env.example: {k} must be the placeholder CHANGE_ME, not a value")

# --- NATS: config variables provided, permissions equal to the stack's
nats_conf = open(os.path.join(cdir, "nats", "dm.conf")).read()
nats_env = set((services.get("nats") or {}).get("environment") or {})
conf_vars = set(re.findall(r":\s*\$([A-Za-z_][A-Za-z0-9_]*)", nats_conf))
for v in sorted(conf_vars - nats_env):
    fail.append(f"nats/dm.conf reads ${v}, which the nats service's environment does not set")

def roles(text):
    """user -> (publish allow list, subscribe allow list), from an authorization block."""
    out = {}
    for m in re.finditer(r'user:\s*"(\w+)"', text):
        nxt = re.search(r'user:\s*"', text[m.end():])
        block = text[m.end(): m.end() + nxt.start() if nxt else len(text)]
        lists = {}
        for kind in ("publish", "subscribe"):
            k = re.search(kind + r":\s*\{\s*allow:\s*\[(.*?)\]", block, re.S)
            lists[kind] = sorted(re.findall(r'"([^"]+)"', k.group(1))) if k else None
        out[m.group(1)] = (lists["publish"], lists["subscribe"])
    return out

stack = open(os.path.join(root, "deploy", "stack.sh")).read()
m = re.search(r"nats_auth_conf\(\)\s*\{\s*cat <<EOF\n(.*?)\nEOF", stack, re.S)
if not m:
    fail.append("deploy/stack.sh: nats_auth_conf's authorization block not found")
else:
    want, have = roles(m.group(1).replace("\\$", "$")), roles(nats_conf)
    if set(want) != set(have):
        fail.append(f"nats/dm.conf users {sorted(have)} differ from deploy/stack.sh's {sorted(want)}")
    for user in sorted(set(want) & set(have)):
        for i, kind in enumerate(("publish", "subscribe")):
            w, h = set(want[user][i] or []), set(have[user][i] or [])
            if w != h or (want[user][i] is None) != (have[user][i] is None):
                fail.append(f"nats/dm.conf: {user} may {kind} differently from deploy/stack.sh's: "
                            f"missing {sorted(w - h)}, extra {sorted(h - w)}")

# --- the workers against the worker's configs
workers = {n: s for n, s in services.items() if "dm-worker" in str(s.get("image", "")) or
           str((s.get("build") or {}).get("dockerfile", "")).endswith("Dockerfile")}
if len(workers) < 2:
    fail.append(f"expected two dm-worker services, found {sorted(workers)}")
cfg_names, required = set(), set()
for d in ("deploy/config", "deploy/config/examples"):
    for fn in sorted(os.listdir(os.path.join(root, d))):
        if fn.endswith(".json"):
            txt = open(os.path.join(root, d, fn)).read()
            for opt, name in re.findall(r'"ENV(\??):([A-Z0-9_]+)"', txt):
                cfg_names.add(name)
                if not opt:
                    required.add(name)
names, ports = {}, {}
for wname, w in sorted(workers.items()):
    env = w.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    for name in sorted(required - set(env)):
        fail.append(f"{wname}: ENV:{name} (deploy/config) is not in its environment")
    for k, v in env.items():
        v = str(v)
        host = v if k.endswith("_HOST") else (re.match(r"[a-z]+://(?:[^@/]*@)?([^:/]+)", v) or [None, None])[1]
        if host and host not in services:
            fail.append(f"{wname}: {k} names host {host!r}, which is no service of compose.yaml")
    cmd = w.get("command") or []
    name = cmd[cmd.index("--name") + 1] if "--name" in cmd else None
    if name is None:
        fail.append(f"{wname}: no --name in its command")
    elif name in names:
        fail.append(f"{wname}: --name {name} is {names[name]}'s too (lease holders must differ)")
    names[name] = wname
    for p in w.get("ports") or []:
        hp = str(p).rsplit(":", 1)[0]
        if hp in ports:
            fail.append(f"{wname}: host port {hp} is {ports[hp]}'s too")
        ports[hp] = wname
    if not w.get("healthcheck"):
        fail.append(f"{wname}: no healthcheck")

# --- images, dependencies, mounted files
for sname, s in sorted(services.items()):
    img = s.get("image")
    if img and sname not in workers:
        tag = img.rsplit("/", 1)[-1].partition(":")[2]
        if not tag or tag == "latest" or not re.search(r"\d", tag):
            fail.append(f"{sname}: image {img} has no pinned version tag")
    if sname not in workers and "healthcheck" not in s and not s.get("profiles"):
        fail.append(f"{sname}: no healthcheck")
    deps = s.get("depends_on") or []
    for d in (deps if isinstance(deps, list) else deps.keys()):
        if d not in services:
            fail.append(f"{sname}: depends_on {d}, which is no service")
    for vol in s.get("volumes") or []:
        src = str(vol).split(":", 1)[0]
        if src.startswith("."):
            if not os.path.exists(os.path.normpath(os.path.join(cdir, src))):
                fail.append(f"{sname}: mounts {src}, which does not exist")
        elif src not in (doc.get("volumes") or {}):
            fail.append(f"{sname}: volume {src} is not declared under volumes:")

# --- the Dockerfile
dockerfile = open(os.path.join(cdir, "Dockerfile")).read()
deps = open(os.path.join(root, "deploy", "install-deps.sh")).read()
pkgs = re.search(r"PACKAGES=\((.*?)\)", deps, re.S).group(1).split()
for p in pkgs:
    # cmocka is for the tests, clang for the fuzzers: the image builds neither.
    if p.endswith("-dev") and p not in ("libcmocka-dev", "libclang-rt-14-dev") and p not in dockerfile:
        fail.append(f"Dockerfile: {p} (deploy/install-deps.sh) is not installed for the build")
users = re.findall(r"^USER\s+(\S+)", dockerfile, re.M)
if not users or users[-1].split(":")[0] in ("root", "0"):
    fail.append("Dockerfile: the image must end with a USER that is not root")
for line in re.findall(r"^COPY\s+(?!--from)(.*?)(?<!\\)$", dockerfile, re.M | re.S):
    parts = line.replace("\\\n", " ").split()
    for src in parts[:-1]:
        if not os.path.exists(os.path.join(root, src)):
            fail.append(f"Dockerfile: COPY {src}: not in the repository")

if fail:
    for f_ in fail:
        print("  " + f_)
    print(f"compose: FAIL {len(fail)} problem(s) in deploy/compose/")
    sys.exit(1)
print(f"compose: ok {len(services)} services ({', '.join(sorted(services))}), "
      f"{len(used)} variables all in .env.example, NATS roles as deploy/stack.sh's, "
      f"{len(required)} ENV: names set for both workers; " + "; ".join(notes))
PY
