"""Runs `orfeas config check` for every compose service that runs orfeas, with exactly the
environment the compose file gives that service (and the configuration file it mounts, if any),
so a misspelt ORFEAS__ key or a bad value fails here rather than at `docker compose up`.

    compose_orfeas.py RESOLVED_COMPOSE ORFEAS_BINARY

RESOLVED_COMPOSE is `docker-compose config` output: interpolated, with anchors and merge keys
resolved. A service runs orfeas when its image is built from deploy/docker/. Also refused:
ORFEAS_ variables with a single underscore in those services (the loader reads only ORFEAS__…,
so such a variable would be ignored without a word) and ORFEAS__ variables in any other service.
"""

import os
import posixpath
import shlex
import subprocess
import sys

import yaml


def runs_orfeas(service: dict) -> bool:
    build = service.get("build") or {}
    dockerfile = build.get("dockerfile", "") if isinstance(build, dict) else ""
    return dockerfile.startswith("deploy/docker/")


def environment(service: dict) -> dict:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    # A name without a value passes the host's variable through, as Compose does.
    resolved = {}
    for key, value in env.items():
        if value is None:
            value = os.environ.get(key)
        if value is not None:
            resolved[key] = str(value)
    return resolved


def config_file(service: dict, env: dict) -> "str | None":
    """The host path of the configuration file the service reads, if it reads one."""
    command = service.get("command") or []
    if isinstance(command, str):
        command = shlex.split(command)
    inside = env.get("ORFEAS_CONFIG")
    for i, arg in enumerate(command):
        if arg == "--config" and i + 1 < len(command):
            inside = command[i + 1]
        elif arg.startswith("--config="):
            inside = arg.split("=", 1)[1]
    if inside is None:
        return None
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            parts = volume.split(":")
            if len(parts) < 2:
                continue
            source, target = parts[0], parts[1]
        else:
            source, target = volume.get("source"), volume.get("target")
        if not source or not target or not source.startswith(("/", ".")):
            continue
        if inside == target:
            return source
        if inside.startswith(target.rstrip("/") + "/"):
            return posixpath.join(source, posixpath.relpath(inside, target))
    raise SystemExit(f"the service reads {inside}, which no bind mount provides")


def main(resolved_path: str, orfeas: str) -> int:
    with open(resolved_path, encoding="utf-8") as f:
        services = yaml.safe_load(f)["services"]
    failures = 0
    checked = 0
    for name, service in sorted(services.items()):
        env = environment(service)
        if not runs_orfeas(service):
            stray = sorted(k for k in env if k.startswith("ORFEAS__"))
            if stray:
                print(f"{name}: FAILED: sets {', '.join(stray)} but does not run orfeas")
                failures += 1
            continue
        checked += 1
        ignored = sorted(
            k for k in env if k.startswith("ORFEAS_") and not k.startswith("ORFEAS__") and k != "ORFEAS_CONFIG"
        )
        if ignored:
            print(f"{name}: FAILED: {', '.join(ignored)} would be ignored (configuration keys are ORFEAS__SECTION__KEY)")
            failures += 1
            continue
        args = [orfeas, "config", "check"]
        file = config_file(service, env)
        if file is not None:
            args += ["--config", file]
            env.pop("ORFEAS_CONFIG", None)
        # Only the service's own variables: none of this machine's ORFEAS__ settings.
        run_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env}
        result = subprocess.run(args, env=run_env, capture_output=True, text=True, check=False)
        if result.returncode == 0:
            print(f"{name}: {result.stdout.strip()}")
        else:
            print(f"{name}: FAILED: {result.stderr.strip() or result.stdout.strip()}")
            failures += 1
    if checked == 0:
        print("no service builds its image from deploy/docker/: nothing was checked")
        return 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
