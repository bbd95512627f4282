"""Validates the objects of built kustomizations (`kubectl kustomize` output, one file each):

1. built-in kinds with kubernetes-validate in strict mode (unknown fields are errors) against
   every Kubernetes version in KUBERNETES_VERSIONS; a kind it has no schema for is an error, not
   the warning its command line prints;
2. KEDA and Prometheus Operator kinds against their CRDs' OpenAPI v3 schemas, vendored in
   deploy/kubernetes/schemas/, made strict the same way (the API server would prune an unknown
   field silently: a misspelt `minReplicas` would just be ignored), plus the CRD's one CEL rule
   (ScaledObject: minReplicaCount <= maxReplicaCount) and the RabbitMQ scaler's parameters;
3. what no schema sees: every reference resolves (selectors select pods, named ports exist,
   Secrets and ConfigMaps and claims exist), and the fleet's own rules hold (a ScaledObject
   watches the queue its worker consumes, with `value` = the worker's batch size; a worker's
   grace period outlasts its job timeout; KEDA's targets leave `replicas` to KEDA).

    python kubernetes_objects.py SCHEMAS_DIR SECRETS_DIR NAME=BUILD.yaml...

Prints one line per build and every error; exits 1 if there was any.
"""

import copy
import json
import pathlib
import re
import sys
import tomllib

import jsonschema
import kubernetes_validate
import yaml

# The oldest release the manifests need (the preStop `sleep` action is on by default from 1.30)
# and the newest kubernetes-validate knows.
KUBERNETES_VERSIONS = ["1.30", kubernetes_validate.utils.latest_version()]
CRD_GROUPS = {"keda.sh", "monitoring.coreos.com"}
# Slack after worker.job_timeout_s for storing outputs and the ledger commit.
DRAIN_MARGIN_S = 60


class Build:
    def __init__(self, name, docs, secrets, schemas):
        self.name = name
        self.docs = docs
        self.secrets = secrets
        self.schemas = schemas
        self.errors = []

    def error(self, obj, message):
        self.errors.append(f"{self.name}: {obj['kind']}/{obj['metadata']['name']}: {message}")

    def of_kind(self, kind):
        return [d for d in self.docs if d["kind"] == kind]

    def named(self, kind, name):
        return next((d for d in self.of_kind(kind) if d["metadata"]["name"] == name), None)

    def pod_templates(self):
        """(workload, pod template) of every Deployment and Job, and every bare Pod as its own
        template."""
        for d in self.docs:
            if d["kind"] == "Deployment" or d["kind"] == "Job":
                yield d, d["spec"]["template"]
            elif d["kind"] == "Pod":
                yield d, d


# --- schemas ---------------------------------------------------------------------------------


def strict(schema):
    """The schema with unknown fields refused wherever it lists the fields and does not say
    unknown ones are kept."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


def load_schemas(folder):
    schemas = {}
    for path in pathlib.Path(folder).glob("*.json"):
        schemas[path.stem] = json.loads(path.read_text())
    return schemas


def crd_schema(build, obj):
    group, _, version = obj["apiVersion"].partition("/")
    schema = build.schemas.get(f"{group}_{obj['kind'].lower()}_{version}")
    if schema is None:
        build.error(obj, f"no vendored schema for {obj['apiVersion']} {obj['kind']}")
    return schema


def validate_custom(build, obj):
    schema = crd_schema(build, obj)
    if schema is None:
        return
    validator = jsonschema.Draft7Validator(strict(schema))
    for e in sorted(validator.iter_errors(obj), key=lambda e: list(e.path)):
        path = ".".join(str(p) for p in e.path) or "(root)"
        build.error(obj, f"{path}: {e.message}")
    if obj["kind"] == "ScaledObject":
        spec = obj["spec"]
        # The CRD's x-kubernetes-validations rule, which JSON Schema cannot express.
        if spec.get("minReplicaCount", 0) > spec.get("maxReplicaCount", 100):
            build.error(obj, "minReplicaCount must be less than or equal to maxReplicaCount")
        for trigger in spec.get("triggers", []):
            if trigger.get("type") == "rabbitmq":
                validate_rabbitmq_trigger(build, obj, trigger)


def validate_rabbitmq_trigger(build, obj, trigger):
    scaler = build.schemas.get("keda-rabbitmq-scaler")
    if scaler is None:
        build.error(obj, "no keda-rabbitmq-scaler.json among the schemas")
        return
    validator = jsonschema.Draft7Validator(scaler["metadata"])
    for e in validator.iter_errors(trigger.get("metadata", {})):
        path = ".".join(str(p) for p in e.path) or "metadata"
        build.error(obj, f"rabbitmq trigger {path}: {e.message}")
    ref = trigger.get("authenticationRef", {}).get("name")
    if ref is None:
        return
    auth = build.named("TriggerAuthentication", ref)
    if auth is None:
        build.error(obj, f"TriggerAuthentication {ref} is not in the build")
        return
    for target in auth["spec"].get("secretTargetRef", []):
        if target["parameter"] not in scaler["authParams"]:
            build.error(auth, f"`{target['parameter']}` is not a parameter of the RabbitMQ scaler")
        check_secret_key(build, auth, target["name"], target["key"], optional=False)


def validate_builtin(build, obj):
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.path) or "(root)"
            build.error(obj, f"Kubernetes {version}: {path}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError:
            build.error(obj, f"Kubernetes {version} has no {obj['apiVersion']} {obj['kind']}")


# --- references ------------------------------------------------------------------------------


def selects(selector, labels):
    """Whether a label selector (matchLabels, matchExpressions) selects `labels`."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def selected_pods(build, selector):
    return [t for _, t in build.pod_templates() if selects(selector, t["metadata"].get("labels", {}))]


def container_ports(template):
    return {p.get("name") for c in template["spec"]["containers"] for p in c.get("ports", [])}


def check_secret_key(build, obj, name, key, optional):
    secret = build.secrets.get(name)
    if secret is None:
        build.error(obj, f"Secret {name} is not among the templates in deploy/kubernetes/secrets/")
    elif key not in secret and not optional:
        build.error(obj, f"Secret {name} has no key {key} in its template")


def env_of(container):
    return {e["name"]: e for e in container.get("env", [])}


def check_namespaces(build):
    """One namespace for everything, once any object names one: an object without would land in
    whatever namespace kubectl's context is in, and references to it would not resolve."""
    named = {d["metadata"].get("namespace") for d in build.docs if d["kind"] != "Namespace"}
    if named == {None}:
        return
    for d in build.docs:
        if d["kind"] != "Namespace" and d["metadata"].get("namespace") is None:
            build.error(d, "has no namespace, unlike the rest of the build")
    if len(named - {None}) > 1:
        build.errors.append(f"{build.name}: objects in several namespaces: {sorted(named - {None})}")


def check_workloads(build):
    claims = {d["metadata"]["name"] for d in build.of_kind("PersistentVolumeClaim")}
    config_maps = {d["metadata"]["name"] for d in build.of_kind("ConfigMap")}
    for workload, template in build.pod_templates():
        labels = template["metadata"].get("labels", {})
        selector = workload["spec"].get("selector")
        if workload["kind"] == "Deployment" and not selects(selector, labels):
            build.error(workload, "spec.selector does not select its own pod template")
        spec = template["spec"]
        for volume in spec.get("volumes", []):
            if "configMap" in volume and volume["configMap"]["name"] not in config_maps:
                build.error(workload, f"ConfigMap {volume['configMap']['name']} is not in the build")
            claim = volume.get("persistentVolumeClaim", {}).get("claimName")
            if claim is not None and claim not in claims:
                build.error(workload, f"PersistentVolumeClaim {claim} is not in the build")
        containers = {c["name"]: c for c in spec["containers"]}
        for c in spec["containers"]:
            ports = {p.get("name") for p in c.get("ports", [])}
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                port = c.get(probe, {}).get("httpGet", {}).get("port")
                if isinstance(port, str) and port not in ports:
                    build.error(workload, f"{c['name']}.{probe} names port {port}, which it lacks")
            for e in c.get("env", []):
                source = e.get("valueFrom", {})
                if "secretKeyRef" in source:
                    ref = source["secretKeyRef"]
                    check_secret_key(build, workload, ref["name"], ref["key"], ref.get("optional", False))
                if "resourceFieldRef" in source:
                    ref = source["resourceFieldRef"]
                    target = containers.get(ref.get("containerName", c["name"]))
                    kind, _, resource = ref["resource"].partition(".")
                    if target is None or resource not in target.get("resources", {}).get(kind, {}):
                        build.error(workload, f"{e['name']}: {ref['resource']} is not set on the container")


def check_selectors(build):
    for svc in build.of_kind("Service"):
        pods = selected_pods(build, {"matchLabels": svc["spec"].get("selector", {})})
        if not pods:
            build.error(svc, "selects no pod")
        for port in svc["spec"]["ports"]:
            target = port.get("targetPort")
            if isinstance(target, str) and not any(target in container_ports(t) for t in pods):
                build.error(svc, f"targetPort {target} is no port of the pods it selects")
    for pdb in build.of_kind("PodDisruptionBudget"):
        if not selected_pods(build, pdb["spec"]["selector"]):
            build.error(pdb, "selects no pod")
    for policy in build.of_kind("NetworkPolicy"):
        if policy["spec"]["podSelector"] and not selected_pods(build, policy["spec"]["podSelector"]):
            build.error(policy, "selects no pod")
    for monitor in build.of_kind("ServiceMonitor"):
        services = [
            s for s in build.of_kind("Service")
            if selects(monitor["spec"]["selector"], s["metadata"].get("labels", {}))
        ]
        if not services:
            build.error(monitor, "selects no Service")
        for endpoint in monitor["spec"]["endpoints"]:
            if not any(endpoint.get("port") in {p.get("name") for p in s["spec"]["ports"]} for s in services):
                build.error(monitor, f"port {endpoint.get('port')} is on no Service it selects")
    for ingress in build.of_kind("Ingress"):
        for rule in ingress["spec"].get("rules", []):
            for path in rule.get("http", {}).get("paths", []):
                ref = path["backend"].get("service")
                if ref is None:
                    continue
                svc = build.named("Service", ref["name"])
                ports = [] if svc is None else svc["spec"]["ports"]
                wanted = ref.get("port", {})
                if not any(p.get("name") == wanted.get("name") or p["port"] == wanted.get("number") for p in ports):
                    build.error(ingress, f"backend {ref['name']}:{wanted} is no Service port in the build")
    for monitor in build.of_kind("PodMonitor"):
        pods = selected_pods(build, monitor["spec"]["selector"])
        if not pods:
            build.error(monitor, "selects no pod")
        for endpoint in monitor["spec"]["podMetricsEndpoints"]:
            missing = [t["metadata"]["labels"].get("app.kubernetes.io/name") for t in pods
                       if endpoint.get("port") not in container_ports(t)]
            if missing:
                build.error(monitor, f"port {endpoint.get('port')} is missing on {missing}")


# --- the fleet's own rules -------------------------------------------------------------------


def orfeas_config(build, container):
    """The configuration file a container reads (the ConfigMap behind ORFEAS_CONFIG)."""
    env = env_of(container)
    path = env.get("ORFEAS_CONFIG", {}).get("value")
    if path is None:
        return {}
    for cm in build.of_kind("ConfigMap"):
        for key, text in cm.get("data", {}).items():
            if path.endswith("/" + key):
                return tomllib.loads(text)
    return {}


def literal(env, name):
    entry = env.get(name)
    return entry.get("value") if entry else None


def check_scaling(build):
    for so in build.of_kind("ScaledObject"):
        target = build.named("Deployment", so["spec"]["scaleTargetRef"]["name"])
        if target is None:
            build.error(so, f"scaleTargetRef {so['spec']['scaleTargetRef']['name']} is no Deployment in the build")
            continue
        if "replicas" in target["spec"]:
            build.error(target, "sets spec.replicas, which every apply would reset under KEDA")
        container = target["spec"]["template"]["spec"]["containers"][0]
        env = env_of(container)
        config = orfeas_config(build, container)
        base = literal(env, "ORFEAS__AMQP__QUEUE") or config.get("amqp", {}).get("queue", "orfeas.jobs")
        engine = literal(env, "ORFEAS__WORKER__ENGINE") or config.get("worker", {}).get("engine", "inflate")
        # shared/src/queue: Topology::for_engine.
        queue = base if engine == "inflate" else f"{base}.{engine}"
        batch = literal(env, "ORFEAS__WORKER__BATCH_SIZE") or str(config.get("worker", {}).get("batch_size", 4))
        for trigger in so["spec"]["triggers"]:
            if trigger["type"] != "rabbitmq":
                continue
            meta = trigger["metadata"]
            if meta.get("queueName") != queue:
                build.error(so, f"watches {meta.get('queueName')}, but its worker consumes {queue}")
            if meta.get("protocol") != "http" or meta.get("mode") != "QueueLength":
                build.error(so, "must count ready + unacknowledged messages (protocol http, mode QueueLength)")
            if float(meta.get("value", "nan")) != float(batch):
                build.error(so, f"value {meta.get('value')} is not the worker's batch size {batch}")
        behavior = so["spec"].get("advanced", {}).get("horizontalPodAutoscalerConfig", {}).get("behavior", {})
        policies = behavior.get("scaleDown", {}).get("policies", [])
        if not policies or any(p["type"] != "Pods" or p["value"] != 1 for p in policies):
            build.error(so, "scale-down must be limited to one pod per period")


def check_drain(build):
    for workload, template in build.pod_templates():
        if template["metadata"].get("labels", {}).get("app.kubernetes.io/component") != "worker":
            continue
        container = template["spec"]["containers"][0]
        env = env_of(container)
        config = orfeas_config(build, container)
        timeout = int(literal(env, "ORFEAS__WORKER__JOB_TIMEOUT_S") or config.get("worker", {}).get("job_timeout_s", 1500))
        grace = template["spec"].get("terminationGracePeriodSeconds", 30)
        if grace < timeout + DRAIN_MARGIN_S:
            build.error(
                workload,
                f"terminationGracePeriodSeconds {grace} does not cover a batch: job timeout {timeout} s + {DRAIN_MARGIN_S} s",
            )


def load_secrets(folder):
    secrets = {}
    for path in sorted(pathlib.Path(folder).glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "Secret":
                secrets[doc["metadata"]["name"]] = {**doc.get("data", {}), **doc.get("stringData", {})}
    return secrets


def main(schemas_dir, secrets_dir, builds):
    schemas = load_schemas(schemas_dir)
    secrets = load_secrets(secrets_dir)
    failed = False
    for arg in builds:
        name, _, path = arg.partition("=")
        docs = [d for d in yaml.safe_load_all(pathlib.Path(path).read_text()) if d]
        build = Build(name, docs, secrets, schemas)
        custom = builtin = 0
        for obj in docs:
            if obj["apiVersion"].split("/")[0] in CRD_GROUPS:
                validate_custom(build, obj)
                custom += 1
            else:
                validate_builtin(build, obj)
                builtin += 1
        check_namespaces(build)
        check_workloads(build)
        check_selectors(build)
        check_scaling(build)
        check_drain(build)
        for e in build.errors:
            print(f"ERROR {e}")
        failed |= bool(build.errors)
        verdict = f"{len(build.errors)} errors" if build.errors else "valid"
        print(
            f"{name}: {builtin} built-in objects (Kubernetes {', '.join(KUBERNETES_VERSIONS)}, strict), "
            f"{custom} custom (vendored CRD schemas, strict), references and fleet rules: {verdict}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) < 4 or not all("=" in a for a in sys.argv[3:]):
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
