#!/usr/bin/env bash
# deploy/grafana/dm-worker.json asks only for what dm-worker exports.
#
#   tests/contract/check_dashboard.sh [REPO] [METRICS]
#
# Always: the file is valid JSON with the dashboard's shape (schemaVersion, uid, the
# DS_PROMETHEUS datasource variable every query uses); every metric name in a PromQL
# expression (panels and variables) is written by the worker's Prometheus code
# (worker/obs/metrics.c, worker/report.c: each name appears there as a string literal, the
# histogram's _bucket and _count series too, and no _sum); every label name used is one the
# worker writes (or Prometheus's own instance/job). With promtool installed (Debian
# package prometheus), each expression also parses as PromQL.
# With METRICS (a URL such as http://127.0.0.1:29461/metrics, or a file holding a scrape):
# every metric name must also be in that real output (a histogram family from its
# # TYPE line gives _bucket and _count).
set -euo pipefail

ROOT=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)}
METRICS=${2:-}
DASH=$ROOT/deploy/grafana/dm-worker.json

scrape=
if [[ -n $METRICS ]]; then
    scrape=$(mktemp)
    trap 'rm -f -- "$scrape"' EXIT
    if [[ -r $METRICS ]]; then
        cp -- "$METRICS" "$scrape"
    elif ! curl -sf --max-time 10 -o "$scrape" "$METRICS"; then
        echo "dashboard: FAIL cannot read $METRICS"
        exit 1
    fi
fi

python3 - "$DASH" "$ROOT/worker/obs/metrics.c" "$ROOT/worker/report.c" "$scrape" <<'PY'
import json, re, shutil, subprocess, sys, tempfile

dash_path, sources, scrape = sys.argv[1], sys.argv[2:4], sys.argv[4]
fail = []
try:
    dash = json.load(open(dash_path))
except ValueError as e:
    print(f"dashboard: FAIL {dash_path} is not JSON: {e}")
    sys.exit(1)

for key in ("uid", "title", "panels", "templating", "schemaVersion"):
    if key not in dash:
        fail.append(f"no top-level {key!r}")
if not isinstance(dash.get("schemaVersion"), int) or dash.get("schemaVersion", 0) < 36:
    fail.append("schemaVersion missing or older than 36 (Grafana 9)")
variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
ds = variables.get("DS_PROMETHEUS")
if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
    fail.append("no datasource variable DS_PROMETHEUS of type prometheus")

# Every expression, where it sits; and every datasource reference.
exprs, refs = [], []
def walk(node, where):
    if isinstance(node, dict):
        if "datasource" in node and isinstance(node["datasource"], dict):
            refs.append((where, node["datasource"]))
        if isinstance(node.get("expr"), str):
            exprs.append((where, node["expr"]))
        q = node.get("query")
        if node.get("type") == "query" and isinstance(q, dict) and isinstance(q.get("query"), str):
            exprs.append((f"variable {node.get('name')}", q["query"]))
        for k, v in node.items():
            walk(v, f"panel {node['title']!r}" if k == "targets" and "title" in node else where)
    elif isinstance(node, list):
        for v in node:
            walk(v, where)
walk(dash, "dashboard")
if not exprs:
    fail.append("no PromQL expression found")
for where, ref in refs:
    if ref.get("type") == "prometheus" and ref.get("uid") != "${DS_PROMETHEUS}":
        fail.append(f"{where}: datasource {ref} is not ${{DS_PROMETHEUS}}")
ids = [p.get("id") for p in dash.get("panels", [])]
if len(ids) != len(set(ids)):
    fail.append("panel ids are not unique")

# What the worker writes: metric names as string literals, label names before ="...".
code = "".join(open(p).read() for p in sources)
literals = re.findall(r'"((?:[^"\\]|\\.)*)"', code)
exported = set()
labels = {"instance", "job"}  # added by Prometheus to every scraped series
for lit in literals:
    exported.update(re.findall(r"\b(dm_[a-z0-9_]+)", lit))
    labels.update(re.findall(r'([a-z_]+)=\\"', lit))
exported.discard("dm_")
# A histogram's family name is no series of its own: only its _bucket and _count are.
exported -= set(re.findall(r'"(dm_[a-z0-9_]+)",\s*"histogram"', code))

live = None
if scrape:
    live = set()
    for line in open(scrape):
        m = re.match(r"# TYPE (\S+) (\S+)", line)
        if m:
            name, kind = m.groups()
            live.update({name + "_bucket", name + "_count"} if kind == "histogram" else {name})
        elif line and not line.startswith("#"):
            live.add(re.split(r"[{ ]", line, 1)[0])

def strip_strings(e):
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', e)

used, used_labels = set(), set()
for where, e in exprs:
    bare = strip_strings(e)
    names = set(re.findall(r"\b(dm_[a-z0-9_]+)\b", bare))
    if not names:
        fail.append(f"{where}: no dm_ metric in {e!r}")
    used |= names
    for name in sorted(names):
        if name not in exported:
            fail.append(f"{where}: {name} is not written by worker/obs/metrics.c or worker/report.c")
        elif live is not None and name not in live:
            fail.append(f"{where}: {name} is not in the scraped /metrics output")
    # label names: inside selectors {a="..", b=~".."} and in by (...) / without (...)
    for sel in re.findall(r"\{([^}]*)\}", bare):
        used_labels.update(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", sel))
    for grp in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", bare):
        used_labels.update(x.strip() for x in grp.split(",") if x.strip())
    m = re.match(r"\s*label_values\((?:.*,)?\s*([a-zA-Z_]+)\s*\)\s*$", bare)
    if m:
        used_labels.add(m.group(1))
for lab in sorted(used_labels - labels):
    fail.append(f"label {lab!r} is not one the worker writes (known: {', '.join(sorted(labels))})")

# PromQL syntax, when promtool is at hand: each expression as a recording rule, Grafana's
# variables replaced by values of the same type.
promtool = shutil.which("promtool")
checked = "not parsed (no promtool: apt-get install prometheus)"
if promtool:
    subst = [("$__rate_interval", "1m"), ("$__interval", "1m"), ("$__range", "1h"),
             ("$instance", ".*"), ("$op", ".*")]
    rules = []
    for i, (where, e) in enumerate(exprs):
        if e.lstrip().startswith("label_values("):
            continue  # Grafana's own query function, not PromQL
        for a, b in subst:
            e = e.replace(a, b)
        rules.append({"record": f"dashboard:expr_{i}", "expr": e})
    with tempfile.NamedTemporaryFile("w", suffix=".yml") as f:
        json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, f)  # JSON is YAML
        f.flush()
        r = subprocess.run([promtool, "check", "rules", f.name], capture_output=True, text=True)
    if r.returncode != 0:
        fail.append("promtool check rules:\n" + (r.stdout + r.stderr).strip())
    checked = f"{len(rules)} parsed by promtool"

if fail:
    for f_ in fail:
        print("  " + f_)
    print(f"dashboard: FAIL {len(fail)} problem(s) in {dash_path}")
    sys.exit(1)
print(f"dashboard: ok {len(dash['panels'])} panels, {len(exprs)} expressions ({checked}), "
      f"{len(used)} metrics all exported{' and in the scrape' if live is not None else ''}: "
      + ", ".join(sorted(used)))
PY
