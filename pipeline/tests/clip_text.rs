//! The CLIP text encoder on burn against transformers' `CLIPTextModel`, on a tiny seeded model
//! saved as transformers saves one (`pipeline/tests/reference/clip_text_fixtures.py`;
//! `pipeline/tests/fixtures/clip_text/`): the expected keys of the tiny and of Stable Diffusion
//! 2.x's encoder, the empty prompt's ids from the tokenizer folder, and the hidden states of
//! the empty prompt and of a random one, with GELU and quick GELU, within 5e-6.

use std::path::{Path, PathBuf};

use burn::tensor::{DType, Int, Tensor, TensorData};
use orfeas_pipeline::diffusion::clip::{
    Activation, ClipText, ClipTextConfig, SpecialTokens, empty_prompt,
};
use orfeas_pipeline::tensor::CpuBackend as B;
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clip_text")
}

fn json(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join(name)).expect("fixture"))
        .expect("json")
}

fn bytes(io: &Value, name: &str) -> (Vec<u8>, Vec<usize>) {
    let entry = &io["tensors"][name];
    let shape = entry["shape"]
        .as_array()
        .expect("shape")
        .iter()
        .map(|d| d.as_u64().expect("dim") as usize)
        .collect();
    let b = std::fs::read(dir().join(entry["file"].as_str().expect("file"))).expect("bin");
    (b, shape)
}

fn t3(io: &Value, name: &str) -> Tensor<B, 3> {
    let (b, s) = bytes(io, name);
    let v: Vec<f32> = b
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Tensor::from_data(TensorData::new(v, [s[0], s[1], s[2]]), &Default::default())
}

fn ids(io: &Value) -> (Vec<i32>, [usize; 2]) {
    let (b, s) = bytes(io, "input_ids");
    let v = b
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    (v, [s[0], s[1]])
}

fn max_abs(a: Tensor<B, 3>, b: Tensor<B, 3>) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b).abs().max().into_scalar()
}

#[test]
fn the_loader_expects_exactly_transformers_keys() {
    let m = json("sd2_text_manifest.json");
    for name in ["sd2", "tiny"] {
        let entry = &m[name];
        let cfg = ClipTextConfig::from_json(&entry["resolved_config"].to_string()).expect(name);
        let ours: Vec<(String, Vec<usize>)> = ClipText::<B>::manifest(&cfg, &Default::default())
            .into_iter()
            .collect();
        let theirs: Vec<(String, Vec<usize>)> = entry["keys"]
            .as_object()
            .expect("keys")
            .iter()
            .map(|(k, v)| {
                let s = v
                    .as_array()
                    .expect("shape")
                    .iter()
                    .map(|d| d.as_u64().expect("dim") as usize)
                    .collect();
                (k.clone(), s)
            })
            .collect();
        assert_eq!(ours, theirs, "{name}");
        let params: u64 = ours
            .iter()
            .map(|(_, s)| s.iter().product::<usize>() as u64)
            .sum();
        assert_eq!(
            params,
            entry["param_count"].as_u64().expect("count"),
            "{name}"
        );
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
    let (ids, [_, l]) = ids(&io);
    let expected: Vec<u32> = ids[..l].iter().map(|&i| i as u32).collect();
    assert_eq!(empty_prompt(tokens, l), expected);
}

#[test]
fn hidden_states_match_transformers() {
    let io = json("tiny_io.json");
    let device = Default::default();
    let (model, cfg) = ClipText::<B>::load(&dir().join("tiny"), &device, DType::F32).expect("tiny");
    assert_eq!(cfg.hidden_act, Activation::Gelu);
    let (v, shape) = ids(&io);
    let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(v, shape), &device);
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
