"""Validates a compose file against the Compose Specification's JSON schema.

    compose_schema.py SCHEMA COMPOSE_FILE

The file is checked as written (interpolation left in place, as the schema allows), with YAML
anchors and merge keys resolved, which is what every Compose implementation reads. Each error is
printed with the path of the offending value; the exit status is 1 if there is any.
"""

import json
import sys

import jsonschema
import yaml


def main(schema_path: str, compose_path: str) -> int:
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    with open(compose_path, encoding="utf-8") as f:
        document = yaml.safe_load(f)
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    for e in errors:
        where = "/".join(str(p) for p in e.absolute_path) or "(top level)"
        print(f"{compose_path}: {where}: {e.message}", file=sys.stderr)
    if errors:
        return 1
    print(f"{compose_path}: valid against the compose-spec schema")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
