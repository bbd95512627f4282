//! `orfeas config check` as a deployment runs it: the real binary, a clean environment holding
//! only the variables under test, and its exit status and message. No service is needed.

use std::process::{Command, Output};

fn config_check(vars: &[(&str, &str)], file: Option<&std::path::Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_orfeas"));
    cmd.args(["config", "check"]);
    if let Some(file) = file {
        cmd.arg("--config").arg(file);
    }
    // Only the variables under test: the machine's own ORFEAS__ settings must not leak in.
    cmd.env_clear()
        .envs(vars.iter().copied())
        .output()
        .expect("run orfeas config check")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_valid_service_environment_passes() {
    let out = config_check(
        &[
            ("ORFEAS__API__LISTEN", "0.0.0.0:8080"),
            ("ORFEAS__API__AUTH", "required"),
            ("ORFEAS__API__ENGINES", r#"["inflate", "hunyuan3d"]"#),
            ("ORFEAS__STORAGE__KIND", "s3"),
            ("ORFEAS__STORAGE__BUCKET", "orfeas"),
            ("ORFEAS__STORAGE__ALLOW_HTTP", "true"),
            (
                "ORFEAS__TELEMETRY__OTLP_ENDPOINT",
                "http://otel-collector:4318/v1/traces",
            ),
        ],
        None,
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("configuration is valid (no file, 7 ORFEAS__ variables)"),
        "{stdout}"
    );
}

#[test]
fn a_misspelt_key_fails_with_the_loaders_message() {
    let out = config_check(&[("ORFEAS__API__LISTN", "0.0.0.0:8080")], None);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("unknown field `listn`") && stderr.starts_with("error: "),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn a_bad_value_names_its_key() {
    let out = config_check(&[("ORFEAS__WORKER__DEVICE", "tpu")], None);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("worker.device"), "{stderr}");
}

#[test]
fn the_file_is_read_and_variables_override_it() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("config_check");
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("orfeas.toml");
    std::fs::write(&file, "[worker]\nbatch_size = 0\n").expect("write");

    let bad = config_check(&[], Some(&file));
    assert!(!bad.status.success());
    assert!(text(&bad.stderr).contains("worker.batch_size"));

    let fixed = config_check(&[("ORFEAS__WORKER__BATCH_SIZE", "2")], Some(&file));
    let stdout = text(&fixed.stdout);
    assert!(fixed.status.success(), "{}", text(&fixed.stderr));
    assert!(
        stdout.contains(&format!("file {}, 1 ORFEAS__ variable)", file.display())),
        "{stdout}"
    );

    // As the services find it: ORFEAS_CONFIG names the file when --config is absent.
    let via_env = config_check(&[("ORFEAS_CONFIG", file.to_str().expect("utf-8"))], None);
    assert!(!via_env.status.success());
    assert!(text(&via_env.stderr).contains("worker.batch_size"));
}
