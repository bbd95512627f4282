//! `DoubleStreamBlock`: separate weights for the latent ("img") and condition ("txt") streams,
//! one joint attention over `cat(txt, img)`.

use burn::module::Module;
use burn::tensor::{Tensor, backend::Backend};

use super::layers::{Modulation, SelfAttention};
use crate::shape::hunyuan3d::nn::{Linear, attention, gelu_tanh, layer_norm, merge_heads};

/// `nn.Sequential(Linear, GELU(tanh), Linear)`; checkpoint keys `.0` and `.2`.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    pub fc1: Linear<B>,
    pub fc2: Linear<B>,
}

impl<B: Backend> Mlp<B> {
    pub fn new(dim: usize, hidden: usize, device: &B::Device) -> Self {
        Self {
            fc1: Linear::new(dim, hidden, true, device),
            fc2: Linear::new(hidden, dim, true, device),
        }
    }

    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        self.fc2.forward(gelu_tanh(self.fc1.forward(x)))
    }
}

#[derive(Module, Debug)]
pub struct DoubleStreamBlock<B: Backend> {
    pub img_mod: Modulation<B>,
    pub img_attn: SelfAttention<B>,
    pub img_mlp: Mlp<B>,
    pub txt_mod: Modulation<B>,
    pub txt_attn: SelfAttention<B>,
    pub txt_mlp: Mlp<B>,
    heads: usize,
}

impl<B: Backend> DoubleStreamBlock<B> {
    pub fn new(
        hidden: usize,
        heads: usize,
        mlp_hidden: usize,
        qkv_bias: bool,
        device: &B::Device,
    ) -> Self {
        Self {
            img_mod: Modulation::new(hidden, true, device),
            img_attn: SelfAttention::new(hidden, heads, qkv_bias, device),
            img_mlp: Mlp::new(hidden, mlp_hidden, device),
            txt_mod: Modulation::new(hidden, true, device),
            txt_attn: SelfAttention::new(hidden, heads, qkv_bias, device),
            txt_mlp: Mlp::new(hidden, mlp_hidden, device),
            heads,
        }
    }

    /// `(img, txt)` → `(img, txt)`, both `[B, L, C]`.
    pub fn forward(
        &self,
        img: Tensor<B, 3>,
        txt: Tensor<B, 3>,
        vec: Tensor<B, 2>,
    ) -> (Tensor<B, 3>, Tensor<B, 3>) {
        let im = self.img_mod.forward(vec.clone());
        let tm = self.txt_mod.forward(vec);
        let (im1, im2, tm1, tm2) = (&im[0], &im[1], &tm[0], &tm[1]);

        let img_in = im1.modulate(layer_norm(img.clone(), 1e-6));
        let [iq, ik, iv] = self.img_attn.qkv(img_in, self.heads);
        let txt_in = tm1.modulate(layer_norm(txt.clone(), 1e-6));
        let [tq, tk, tv] = self.txt_attn.qkv(txt_in, self.heads);

        let lt = txt.dims()[1];
        let li = img.dims()[1];
        let q = Tensor::cat(vec![tq, iq], 2);
        let k = Tensor::cat(vec![tk, ik], 2);
        let v = Tensor::cat(vec![tv, iv], 2);
        let attn = merge_heads(attention(q, k, v));
        let txt_attn = attn.clone().narrow(1, 0, lt);
        let img_attn = attn.narrow(1, lt, li);

        let img = img + im1.gate.clone() * self.img_attn.proj.forward(img_attn);
        let img = img.clone()
            + im2.gate.clone() * self.img_mlp.forward(im2.modulate(layer_norm(img, 1e-6)));
        let txt = txt + tm1.gate.clone() * self.txt_attn.proj.forward(txt_attn);
        let txt = txt.clone()
            + tm2.gate.clone() * self.txt_mlp.forward(tm2.modulate(layer_norm(txt, 1e-6)));
        (img, txt)
    }
}
