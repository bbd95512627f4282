//! The identity of the weights a worker loaded (name and content hash), computed once at start
//! from the files themselves, so the ledger names what really ran — a checkpoint folder replaced
//! under the same path shows up as a new digest.

use std::io::Read;
use std::path::Path;

use orfeas_shared::{Config, StartError};
use orfeas_vocab::{JobWeights, WeightsIdentity};
use sha2::{Digest, Sha256};

/// The engine's and the segmentation model's weights this worker's configuration names.
pub fn job_weights(config: &Config) -> Result<JobWeights, StartError> {
    let w = &config.worker;
    let identify_setting = |setting: &str, path: &Path| {
        let started = std::time::Instant::now();
        let id = identify(path)
            .map_err(|e| StartError::Model(format!("{setting} = {}: {e}", path.display())))?;
        tracing::info!(setting, weights = %id.label(), sha256 = %id.sha256,
            hash_s = started.elapsed().as_secs_f64(), "weights identified");
        Ok::<_, StartError>(id)
    };
    let engine = match &w.weights {
        Some(path) if w.engine.needs_weights() => Some(identify_setting("worker.weights", path)?),
        _ => None,
    };
    let segmentation = match &w.segmentation_weights {
        Some(path) => Some(identify_setting("worker.segmentation_weights", path)?),
        None => None,
    };
    Ok(JobWeights {
        engine,
        segmentation,
    })
}

/// A file's SHA-256, or a folder's: the SHA-256 of the `sha256sum`-format listing
/// (`<hex>  <name>\n`) of its regular files sorted by name (sub-folders are not part of a
/// checkpoint and are skipped).
pub fn identify(path: &Path) -> std::io::Result<WeightsIdentity> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let sha256 = if path.is_dir() {
        let mut files: Vec<(String, std::path::PathBuf)> = std::fs::read_dir(path)?
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
            .collect();
        files.sort();
        let mut listing = String::new();
        for (file, p) in &files {
            listing.push_str(&format!("{}  {file}\n", file_sha256(p)?));
        }
        hex(&Sha256::digest(listing.as_bytes()))
    } else {
        file_sha256(path)?
    };
    Ok(WeightsIdentity { name, sha256 })
}

fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    // 1 MiB reads: a 5 GB checkpoint hashes at the disk's speed without mapping it twice.
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `sha256sum` prints, computed by the system tool rather than by this module.
    fn sha256sum(dir: &Path, args: &str) -> String {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("sha256sum {args}"))
            .current_dir(dir)
            .output()
            .expect("sha256sum runs");
        assert!(out.status.success());
        String::from_utf8(out.stdout).expect("utf-8")[..64].to_string()
    }

    #[test]
    fn files_and_folders_hash_as_sha256sum_does_and_a_changed_file_changes_the_digest() {
        let dir = std::env::temp_dir().join(format!("orfeas-provenance-{}", std::process::id()));
        let ckpt = dir.join("tiny-ckpt");
        std::fs::create_dir_all(ckpt.join("sub")).expect("dirs");
        std::fs::write(ckpt.join("model.safetensors"), vec![7u8; 3 << 20]).expect("write");
        std::fs::write(ckpt.join("config.yaml"), b"model: tiny\n").expect("write");
        std::fs::write(ckpt.join("sub/ignored.txt"), b"not part of it").expect("write");

        let file = identify(&ckpt.join("model.safetensors")).expect("file");
        assert_eq!(file.name, "model.safetensors");
        assert_eq!(file.sha256, sha256sum(&ckpt, "model.safetensors"));

        let folder = identify(&ckpt).expect("folder");
        assert_eq!(folder.name, "tiny-ckpt");
        assert_eq!(
            folder.sha256,
            sha256sum(&ckpt, "config.yaml model.safetensors | sha256sum")
        );

        std::fs::write(ckpt.join("config.yaml"), b"model: tiny2\n").expect("write");
        assert_ne!(identify(&ckpt).expect("folder").sha256, folder.sha256);
        assert!(identify(&dir.join("absent")).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}
