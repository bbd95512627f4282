//! `SingleStreamBlock`: one stream over the joined sequence, attention and MLP in parallel from
//! one input projection (`linear1`) and joined by `linear2`.

use burn::module::Module;
use burn::tensor::{Tensor, backend::Backend};

use super::layers::{Modulation, QkNorm, split_qkv};
use crate::shape::hunyuan3d::nn::{Linear, RmsNorm, attention, gelu_tanh, layer_norm, merge_heads};

#[derive(Module, Debug)]
pub struct SingleStreamBlock<B: Backend> {
    pub linear1: Linear<B>,
    pub linear2: Linear<B>,
    pub norm: QkNorm<B>,
    pub modulation: Modulation<B>,
    heads: usize,
    hidden: usize,
    mlp_hidden: usize,
}

impl<B: Backend> SingleStreamBlock<B> {
    pub fn new(hidden: usize, heads: usize, mlp_hidden: usize, device: &B::Device) -> Self {
        let hd = hidden / heads;
        Self {
            linear1: Linear::new(hidden, 3 * hidden + mlp_hidden, true, device),
            linear2: Linear::new(hidden + mlp_hidden, hidden, true, device),
            norm: QkNorm {
                query_norm: RmsNorm::new(hd, device),
                key_norm: RmsNorm::new(hd, device),
            },
            modulation: Modulation::new(hidden, false, device),
            heads,
            hidden,
            mlp_hidden,
        }
    }

    pub fn forward(&self, x: Tensor<B, 3>, vec: Tensor<B, 2>) -> Tensor<B, 3> {
        let m = self.modulation.forward(vec).remove(0);
        let x_mod = m.modulate(layer_norm(x.clone(), 1e-6));
        let mut parts = self
            .linear1
            .forward(x_mod)
            .split_with_sizes(vec![3 * self.hidden, self.mlp_hidden], 2);
        let mlp = parts.pop().expect("two parts");
        let qkv = parts.pop().expect("two parts");
        let [q, k, v] = split_qkv(qkv, self.heads, &self.norm);
        let attn = merge_heads(attention(q, k, v));
        let out = self
            .linear2
            .forward(Tensor::cat(vec![attn, gelu_tanh(mlp)], 2));
        x + m.gate * out
    }
}
