//! `Hunyuan3DDiT`: the Flux-style MMDiT denoiser (double-stream then single-stream blocks, no
//! positional encoding; condition tokens first in the joint sequence and dropped before the final
//! layer).

mod double_block;
mod layers;
mod single_block;

use burn::module::Module;
use burn::tensor::{Tensor, backend::Backend};

pub use double_block::{DoubleStreamBlock, Mlp};
pub use layers::{LastLayer, MlpEmbedder, Modulation, QkNorm, SelfAttention, timestep_embedding};
pub use single_block::SingleStreamBlock;

use super::config::DitConfig;
use super::nn::Linear;
use super::weights::KeyRemap;

/// The only differences between our module paths and the checkpoint's `model.` keys.
pub const DIT_REMAP: KeyRemap = KeyRemap(&[
    // nn.Sequential(Linear, GELU, Linear): the Linears are children 0 and 2.
    ("img_mlp.fc1", "img_mlp.0"),
    ("img_mlp.fc2", "img_mlp.2"),
    ("txt_mlp.fc1", "txt_mlp.0"),
    ("txt_mlp.fc2", "txt_mlp.2"),
    // nn.Sequential(SiLU, Linear): the Linear is child 1 (and `adaLN` is not snake case).
    ("ada_ln_modulation", "adaLN_modulation.1"),
]);

#[derive(Module, Debug)]
pub struct Hunyuan3dDit<B: Backend> {
    pub latent_in: Linear<B>,
    pub time_in: MlpEmbedder<B>,
    pub cond_in: Linear<B>,
    pub guidance_in: Option<MlpEmbedder<B>>,
    pub double_blocks: Vec<DoubleStreamBlock<B>>,
    pub single_blocks: Vec<SingleStreamBlock<B>>,
    pub final_layer: LastLayer<B>,
    time_factor: f64,
}

impl<B: Backend> Hunyuan3dDit<B> {
    /// The module tree with lazy (unallocated) parameters.
    pub fn new(cfg: &DitConfig, device: &B::Device) -> Self {
        let h = cfg.hidden_size;
        let mlp = cfg.mlp_hidden();
        Self {
            latent_in: Linear::new(cfg.in_channels, h, true, device),
            time_in: MlpEmbedder::new(256, h, device),
            cond_in: Linear::new(cfg.context_in_dim, h, true, device),
            guidance_in: cfg.guidance_embed.then(|| MlpEmbedder::new(256, h, device)),
            double_blocks: (0..cfg.depth)
                .map(|_| DoubleStreamBlock::new(h, cfg.num_heads, mlp, cfg.qkv_bias, device))
                .collect(),
            single_blocks: (0..cfg.depth_single_blocks)
                .map(|_| SingleStreamBlock::new(h, cfg.num_heads, mlp, device))
                .collect(),
            final_layer: LastLayer::new(h, cfg.in_channels, device),
            time_factor: cfg.time_factor,
        }
    }

    pub fn has_guidance_embed(&self) -> bool {
        self.guidance_in.is_some()
    }

    /// One velocity prediction. `x` `[B, L, C]` latents, `t` the B timesteps in [0, 1]
    /// (0 = noise), `cond` `[B, Lc, Cc]` condition tokens, `guidance` the B guidance scales for a
    /// guidance-distilled model (ignored otherwise; required by one).
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        t: &[f32],
        cond: Tensor<B, 3>,
        guidance: Option<&[f32]>,
    ) -> Tensor<B, 3> {
        let device = x.device();
        let dtype = self.latent_in.weight.val().dtype();
        let x = x.cast(dtype);
        let cond = cond.cast(dtype);
        let latent = self.latent_in.forward(x);
        let mut vec = self
            .time_in
            .embed_scalars(t, self.time_factor, dtype, &device);
        if let Some(g_in) = &self.guidance_in {
            let g = guidance.expect("a guidance-distilled model needs the guidance scale");
            vec = vec + g_in.embed_scalars(g, self.time_factor, dtype, &device);
        }
        let mut cond = self.cond_in.forward(cond);
        let mut latent = latent;
        for block in &self.double_blocks {
            let (l, c) = block.forward(latent, cond, vec.clone());
            latent = l;
            cond = c;
        }
        let lc = cond.dims()[1];
        let mut h = Tensor::cat(vec![cond, latent], 1);
        for block in &self.single_blocks {
            h = block.forward(h, vec.clone());
        }
        let l = h.dims()[1] - lc;
        let h = h.narrow(1, lc, l);
        self.final_layer.forward(h, vec)
    }
}
