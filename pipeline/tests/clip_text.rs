//! The CLIP text encoder on burn against transformers' `CLIPTextModel`, on a tiny seeded model
//! saved as transformers saves one (`pipeline/tests/reference/clip_text_fixtures.py`;
//! `pipeline/tests/fixtures/clip_text/`): the expected keys of the tiny and of Stable Diffusion
//! 2.x's encoder, the empty prompt's ids from the tokenizer folder, and the hidden states of
//! the empty prompt and of a random one, with GELU and quick GELU, within 5e-6.

#[path = "diffusion_support/mod.rs"]
mod support;

use std::path::PathBuf;

use burn::tensor::{DType, Tensor};
use orfeas_pipeline::diffusion::clip::{
    Activation, ClipText, ClipTextConfig, SpecialTokens, empty_prompt,
};
use orfeas_pipeline::tensor::CpuBackend as B;
use serde_json::Value;
use support::{Fixtures, assert_keys, max_abs};

fn fx() -> Fixtures {
    Fixtures::new("clip_text")
}

fn dir() -> PathBuf {
    fx().path("")
}

fn json(name: &str) -> Value {
    fx().json(name)
}

fn t3(io: &Value, name: &str) -> Tensor<B, 3> {
    fx().t3(io, name)
}

#[test]
fn the_loader_expects_exactly_transformers_keys() {
    let m = json("sd2_text_manifest.json");
    for name in ["sd2", "tiny"] {
        let entry = &m[name];
        let cfg = ClipTextConfig::from_json(&entry["resolved_config"].to_string()).expect(name);
        let ours = ClipText::<B>::manifest(&cfg, &Default::default())
            .into_iter()
            .collect();
        assert_keys(name, ours, entry);
    }
}

#[test]
fn the_empty_prompt_comes_from_the_tokenizer_folder() {
    let tokens = SpecialTokens::read(&dir().join("tiny/tokenizer")).expect("tokenizer");
    assert_eq!(
        tokens,
        SpecialTokens {
            bos: 998,
            eos: 999,
            pad: 0
        }
    );
    let io = json("tiny_io.json");
    let ids = fx().ids(&io, "input_ids");
    let [_, l] = ids.dims();
    let first: Vec<u32> = ids
        .slice([0..1, 0..l])
        .into_data()
        .convert::<i64>()
        .to_vec::<i64>()
        .expect("ids")
        .into_iter()
        .map(|i| i as u32)
        .collect();
    assert_eq!(empty_prompt(tokens, l), first);
}

#[test]
fn hidden_states_match_transformers() {
    let io = json("tiny_io.json");
    let device = Default::default();
    let (model, cfg) = ClipText::<B>::load(&dir().join("tiny"), &device, DType::F32).expect("tiny");
    assert_eq!(cfg.hidden_act, Activation::Gelu);
    let ids = fx().ids(&io, "input_ids");
    let err = max_abs(model.embed(ids.clone()), t3(&io, "embeddings"));
    assert!(err < 1e-6, "embeddings off by {err}");
    let layer0 = model.layer(
        &model.text_model.encoder.layers[0],
        model.embed(ids.clone()),
    );
    let err = max_abs(layer0, t3(&io, "hidden_after_layer_0"));
    assert!(err < 5e-6, "layer 0 off by {err}");
    let err = max_abs(model.forward(ids.clone()), t3(&io, "last_hidden_state"));
    assert!(err < 5e-6, "last_hidden_state off by {err}");

    // The same weights with quick GELU (Stable Diffusion 1.x's activation).
    let mut quick = cfg.clone();
    quick.hidden_act = Activation::QuickGelu;
    let text = serde_json::json!({
        "vocab_size": quick.vocab_size, "hidden_size": quick.hidden_size,
        "intermediate_size": quick.intermediate_size,
        "num_hidden_layers": quick.num_hidden_layers,
        "num_attention_heads": quick.num_attention_heads,
        "max_position_embeddings": quick.max_position_embeddings,
        "hidden_act": "quick_gelu", "layer_norm_eps": quick.layer_norm_eps,
    });
    let tmp = std::env::temp_dir().join(format!("orfeas-clip-quick-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).expect("tmp");
    std::fs::write(tmp.join("config.json"), text.to_string()).expect("config");
    std::fs::copy(
        dir().join("tiny/model.safetensors"),
        tmp.join("model.safetensors"),
    )
    .expect("weights");
    let (model, _) = ClipText::<B>::load(&tmp, &device, DType::F32).expect("quick gelu");
    let err = max_abs(model.forward(ids), t3(&io, "last_hidden_state_quick_gelu"));
    assert!(err < 5e-6, "quick gelu: last_hidden_state off by {err}");
    let _ = std::fs::remove_dir_all(&tmp);
}

/// Checkpoints saved by older transformers carry the `position_ids` buffer; it is not a
/// parameter and loading ignores it, while any other stray tensor is still refused.
#[test]
fn the_old_position_ids_buffer_is_ignored_and_other_strays_are_not() {
    let bytes = std::fs::read(dir().join("tiny/model.safetensors")).expect("weights");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("parse");
    let ids: Vec<u8> = (0..77i64).flat_map(|i| i.to_le_bytes()).collect();
    let device = Default::default();
    for (stray, accepted) in [
        ("text_model.embeddings.position_ids", true),
        ("text_model.embeddings.something_else", false),
    ] {
        let mut views: Vec<(String, safetensors::tensor::TensorView<'_>)> =
            st.tensors().into_iter().collect();
        views.push((
            stray.to_string(),
            safetensors::tensor::TensorView::new(safetensors::Dtype::I64, vec![1, 77], &ids)
                .expect("view"),
        ));
        let tmp =
            std::env::temp_dir().join(format!("orfeas-clip-{}-{accepted}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).expect("tmp");
        std::fs::copy(dir().join("tiny/config.json"), tmp.join("config.json")).expect("config");
        safetensors::serialize_to_file(views, None, &tmp.join("model.safetensors")).expect("write");
        let result = ClipText::<B>::load(&tmp, &device, DType::F32);
        if accepted {
            assert!(result.is_ok(), "{stray}: {:?}", result.err());
        } else {
            let err = result.expect_err("a stray tensor").to_string();
            assert!(err.contains(stray), "{err}");
        }
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
