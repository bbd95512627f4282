"""Loads the configuration of every ORFEAS container in built kustomizations exactly as the
process would: `orfeas config check` with the ConfigMap's file as ORFEAS_CONFIG and the
container's environment — literal values as written, Secret references replaced by sample values
of the right shape (the templates hold placeholders that must not load), resource references
resolved from the container's own resources. A key that does not exist, in the file or as an
ORFEAS__ variable, fails here with the loader's message.

    python kubernetes_config.py ORFEAS_BINARY NAME=BUILD.yaml...
"""

import base64
import os
import pathlib
import re
import subprocess
import sys
import tempfile

import yaml

IMAGES = {"orfeas", "orfeas-cuda"}

# A value of the right shape for every key of the Secret templates.
SAMPLES = {
    "database-url": "postgres://orfeas:sample@postgres:5432/orfeas",
    "amqp-url": "amqp://orfeas:sample@rabbitmq:5672/%2f",
    "amqp-management-url": "http://orfeas:sample@rabbitmq:15672",
    "redis-url": "redis://:sample@redis:6379/",
    "s3-access-key-id": "sample-access-key",
    "s3-secret-access-key": "sample-secret-key",
    "session-secret": "sample-session-secret-of-some-length",
    "webhooks-secret": "whsec_" + base64.b64encode(bytes(range(32))).decode(),
}

UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
         "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def quantity(text):
    m = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(text))
    if not m or m.group(2) not in UNITS:
        raise ValueError(f"quantity {text!r}")
    return int(float(m.group(1)) * UNITS[m.group(2)])


def image_name(image):
    return image.split("@")[0].rsplit("/", 1)[-1].split(":")[0]


def environment(container, problems):
    env = {}
    for e in container.get("env", []):
        name = e["name"]
        source = e.get("valueFrom")
        if source is None:
            env[name] = e.get("value", "")
        elif "secretKeyRef" in source:
            key = source["secretKeyRef"]["key"]
            if key not in SAMPLES:
                problems.append(f"{name}: no sample value for Secret key {key} (add one to SAMPLES)")
            else:
                env[name] = SAMPLES[key]
        elif "resourceFieldRef" in source:
            ref = source["resourceFieldRef"]
            kind, _, resource = ref["resource"].partition(".")
            value = container.get("resources", {}).get(kind, {}).get(resource)
            if value is None:
                problems.append(f"{name}: {ref['resource']} is not set")
            else:
                env[name] = str(quantity(value) // quantity(ref.get("divisor", "1")))
        elif "fieldRef" in source:
            env[name] = "sample-" + source["fieldRef"]["fieldPath"].replace(".", "-")
        else:
            problems.append(f"{name}: unsupported valueFrom {sorted(source)}")
    return env


def config_file(docs, spec, container, env, folder):
    """Writes the ConfigMap file ORFEAS_CONFIG names into `folder`; returns its path."""
    path = env.get("ORFEAS_CONFIG")
    if path is None:
        return None
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        prefix = mount["mountPath"].rstrip("/") + "/"
        if not path.startswith(prefix):
            continue
        name = volumes[mount["name"]]["configMap"]["name"]
        cm = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == name)
        out = pathlib.Path(folder) / path[len(prefix):]
        out.write_text(cm["data"][path[len(prefix):]])
        return str(out)
    raise ValueError(f"ORFEAS_CONFIG={path} is on no mounted ConfigMap")


def main(orfeas, builds):
    failed = False
    for arg in builds:
        build, _, path = arg.partition("=")
        docs = [d for d in yaml.safe_load_all(pathlib.Path(path).read_text()) if d]
        for workload in docs:
            if workload["kind"] not in ("Deployment", "Job"):
                continue
            spec = workload["spec"]["template"]["spec"]
            for container in spec["containers"]:
                if image_name(container["image"]) not in IMAGES:
                    continue
                where = f"{build}: {workload['kind']}/{workload['metadata']['name']}/{container['name']}"
                problems = []
                env = environment(container, problems)
                with tempfile.TemporaryDirectory() as folder:
                    file = config_file(docs, spec, container, env, folder)
                    if file is not None:
                        env["ORFEAS_CONFIG"] = file
                    run = subprocess.run(
                        [orfeas, "config", "check"],
                        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
                        capture_output=True,
                        text=True,
                    )
                if run.returncode != 0:
                    problems.append((run.stderr or run.stdout).strip())
                if problems:
                    failed = True
                    for p in problems:
                        print(f"{where}: FAILED: {p}")
                else:
                    print(f"{where}: {run.stdout.strip()}")
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) < 3 or not all("=" in a for a in sys.argv[2:]):
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2:]))
