"""Writes the OpenAPI v3 schema of every version of the CustomResourceDefinitions given (YAML
files, `-` for stdin) to `<group>_<kind>_<version>.json` beside this file, the names
deploy/checks/kubernetes_objects.py looks them up by. The schemas are written as the CRD holds
them; strictness (no unknown fields) is added by the check, not stored here.

    python3 extract.py keda.sh_scaledobjects.yaml ...
"""

import json
import pathlib
import sys

import yaml

HERE = pathlib.Path(__file__).resolve().parent


def main(paths):
    for path in paths:
        text = sys.stdin.read() if path == "-" else pathlib.Path(path).read_text()
        for doc in yaml.safe_load_all(text):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            kind = spec["names"]["kind"].lower()
            for version in spec["versions"]:
                schema = version["schema"]["openAPIV3Schema"]
                out = HERE / f"{spec['group']}_{kind}_{version['name']}.json"
                out.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
                print(f"{out.name}: {spec['names']['kind']} {spec['group']}/{version['name']}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
