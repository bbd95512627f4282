//! The special tokens of a CLIP tokenizer folder (`tokenizer/`), and the empty prompt they
//! make: start, end, then padding to the context length. The delight pipeline encodes only the
//! empty prompt, so no BPE merges are read.

use std::path::Path;

use serde_json::Value;

/// Start, end and padding token ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecialTokens {
    pub bos: u32,
    pub eos: u32,
    pub pad: u32,
}

fn token_name(v: &Value) -> Option<&str> {
    match v {
        Value::String(s) => Some(s),
        Value::Object(o) => o.get("content").and_then(Value::as_str),
        _ => None,
    }
}

impl SpecialTokens {
    /// Reads the token strings and `vocab.json` (their ids). transformers takes them from
    /// `tokenizer_config.json` when it lists `added_tokens_decoder` (its current format), else
    /// from `special_tokens_map.json`, which then overrides the older config — so Stable
    /// Diffusion 2.x's folders pad with `!` (id 0) although their config names `<|endoftext|>`.
    pub fn read(folder: &Path) -> Result<SpecialTokens, String> {
        let read = |name: &str| -> Result<Value, String> {
            let path = folder.join(name);
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
        };
        let config = read("tokenizer_config.json").ok();
        let map = match config {
            Some(c) if c.get("added_tokens_decoder").is_some() => c,
            _ => read("special_tokens_map.json")?,
        };
        let vocab = read("vocab.json")?;
        let id = |field: &str| -> Result<u32, String> {
            let token = token_name(&map[field])
                .ok_or_else(|| format!("the tokenizer names no `{field}`"))?;
            vocab[token]
                .as_u64()
                .map(|i| i as u32)
                .ok_or_else(|| format!("vocab.json has no id for {field} `{token}`"))
        };
        Ok(SpecialTokens {
            bos: id("bos_token")?,
            eos: id("eos_token")?,
            pad: id("pad_token")?,
        })
    }
}

/// The ids of the empty prompt at `length` tokens.
pub fn empty_prompt(tokens: SpecialTokens, length: usize) -> Vec<u32> {
    let mut ids = vec![tokens.pad; length.max(2)];
    ids[0] = tokens.bos;
    ids[1] = tokens.eos;
    ids
}
