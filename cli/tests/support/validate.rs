//! The external mesh validators every test binary of the CLI runs over what it produced:
//! Khronos glTF-Validator for GLB, trimesh for OBJ/STL/PLY (closed, consistently wound, positive
//! volume). `scripts/test.sh` installs them and sets `ORFEAS_NODE_MODULES`, `ORFEAS_PYTHON` and
//! `ORFEAS_REQUIRE_VALIDATORS=1`; run bare (`cargo test`), the step is reported as skipped.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs the external validators over the files; panics on any failure.
pub fn validate(files: &[PathBuf]) {
    let node = std::env::var("ORFEAS_NODE_MODULES").ok();
    let python = std::env::var("ORFEAS_PYTHON").ok();
    let required = std::env::var("ORFEAS_REQUIRE_VALIDATORS").is_ok_and(|v| v == "1");
    let (Some(node), Some(python)) = (node, python) else {
        assert!(
            !required,
            "validators required but ORFEAS_NODE_MODULES / ORFEAS_PYTHON unset"
        );
        eprintln!("validators skipped: run scripts/test.sh to install them");
        return;
    };
    let ext = |f: &Path| {
        f.extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_owned()
    };
    let glbs: Vec<&PathBuf> = files.iter().filter(|f| ext(f) == "glb").collect();
    // A textured OBJ's material and texture are checked through the OBJ that names them.
    let others: Vec<&PathBuf> = files
        .iter()
        .filter(|f| matches!(ext(f).as_str(), "obj" | "stl" | "ply"))
        .collect();
    if !glbs.is_empty() {
        let out = Command::new("node")
            .arg(repo().join("tools/validate/validate-gltf.mjs"))
            .args(&glbs)
            .env("ORFEAS_NODE_MODULES", &node)
            .output()
            .expect("node runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "glTF-Validator: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(text.lines().count(), glbs.len(), "{text}");
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect("json line");
            assert_eq!(v["errors"], 0, "{line}");
        }
    }
    if !others.is_empty() {
        let out = Command::new(&python)
            .arg(repo().join("tools/validate/check_meshes.py"))
            .args(&others)
            .output()
            .expect("python runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "trimesh: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(text.lines().count(), others.len(), "{text}");
    }
}
