//! The UNet's down, mid and up blocks (`CrossAttnDownBlock2D`, `DownBlock2D`,
//! `UNetMidBlock2DCrossAttn`, `CrossAttnUpBlock2D`, `UpBlock2D`): resnets with the time
//! embedding, each followed by a transformer where the block has attention, and the resampler.
//! Down blocks hand every intermediate state to the up blocks as skip connections.

use burn::module::Module;
use burn::tensor::{Tensor, backend::Backend};

use super::transformer::{Conditioning, Transformer2d};
use crate::diffusion::resnet::{Downsample, ResnetBlock, Upsample};

/// The UNet's resnet group norm ε.
pub const RESNET_EPS: f64 = 1e-5;

/// What a block needs to know to build itself.
#[derive(Debug, Clone, Copy)]
pub struct Dims {
    pub temb: usize,
    pub groups: usize,
    pub context: usize,
    /// Hunyuan3D-Paint's multiview transformer blocks.
    pub multiview: bool,
}

/// One transformer per resnet for a cross-attention block (`heads` given), none otherwise.
fn transformers<B: Backend>(
    channels: usize,
    layers: usize,
    heads: Option<usize>,
    d: Dims,
    device: &B::Device,
) -> Vec<Transformer2d<B>> {
    match heads {
        Some(h) => (0..layers)
            .map(|_| Transformer2d::new(channels, d.context, h, d.groups, d.multiview, device))
            .collect(),
        None => Vec::new(),
    }
}

#[derive(Module, Debug)]
pub struct DownBlock<B: Backend> {
    pub resnets: Vec<ResnetBlock<B>>,
    pub attentions: Vec<Transformer2d<B>>,
    pub downsamplers: Vec<Downsample<B>>,
}

impl<B: Backend> DownBlock<B> {
    /// `heads`: `Some` for a cross-attention block.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        c_in: usize,
        c_out: usize,
        layers: usize,
        heads: Option<usize>,
        downsample: bool,
        d: Dims,
        device: &B::Device,
    ) -> Self {
        let resnets = (0..layers)
            .map(|j| {
                let c = if j == 0 { c_in } else { c_out };
                ResnetBlock::new(c, c_out, d.groups, RESNET_EPS, Some(d.temb), device)
            })
            .collect();
        let attentions = transformers(c_out, layers, heads, d, device);
        Self {
            resnets,
            attentions,
            downsamplers: if downsample {
                vec![Downsample::new(c_out, false, device)]
            } else {
                Vec::new()
            },
        }
    }

    /// The block's output, with every state it passes to the up blocks appended to `skips`.
    pub fn forward(
        &self,
        mut x: Tensor<B, 4>,
        temb: &Tensor<B, 2>,
        cond: &mut Conditioning<'_, B>,
        skips: &mut Vec<Tensor<B, 4>>,
    ) -> Tensor<B, 4> {
        for (j, resnet) in self.resnets.iter().enumerate() {
            x = resnet.forward(x, Some(temb.clone()));
            if let Some(attn) = self.attentions.get(j) {
                x = attn.forward(x, cond);
            }
            skips.push(x.clone());
        }
        for d in &self.downsamplers {
            x = d.forward(x);
            skips.push(x.clone());
        }
        x
    }
}

#[derive(Module, Debug)]
pub struct MidBlock<B: Backend> {
    pub resnets: Vec<ResnetBlock<B>>,
    pub attentions: Vec<Transformer2d<B>>,
}

impl<B: Backend> MidBlock<B> {
    pub fn new(c: usize, heads: usize, d: Dims, device: &B::Device) -> Self {
        Self {
            resnets: (0..2)
                .map(|_| ResnetBlock::new(c, c, d.groups, RESNET_EPS, Some(d.temb), device))
                .collect(),
            attentions: vec![Transformer2d::new(
                c,
                d.context,
                heads,
                d.groups,
                d.multiview,
                device,
            )],
        }
    }

    pub fn forward(
        &self,
        x: Tensor<B, 4>,
        temb: &Tensor<B, 2>,
        cond: &mut Conditioning<'_, B>,
    ) -> Tensor<B, 4> {
        let mut x = self.resnets[0].forward(x, Some(temb.clone()));
        for (attn, resnet) in self.attentions.iter().zip(&self.resnets[1..]) {
            x = attn.forward(x, cond);
            x = resnet.forward(x, Some(temb.clone()));
        }
        x
    }
}

#[derive(Module, Debug)]
pub struct UpBlock<B: Backend> {
    pub resnets: Vec<ResnetBlock<B>>,
    pub attentions: Vec<Transformer2d<B>>,
    pub upsamplers: Vec<Upsample<B>>,
}

impl<B: Backend> UpBlock<B> {
    /// `c_prev`: the channels coming up from below; `c_skip_last`: those of the skip its last
    /// resnet takes (the matching down block's input).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        c_prev: usize,
        c_out: usize,
        c_skip_last: usize,
        layers: usize,
        heads: Option<usize>,
        upsample: bool,
        d: Dims,
        device: &B::Device,
    ) -> Self {
        let resnets = (0..layers)
            .map(|j| {
                let skip = if j + 1 == layers { c_skip_last } else { c_out };
                let below = if j == 0 { c_prev } else { c_out };
                ResnetBlock::new(
                    below + skip,
                    c_out,
                    d.groups,
                    RESNET_EPS,
                    Some(d.temb),
                    device,
                )
            })
            .collect();
        let attentions = transformers(c_out, layers, heads, d, device);
        Self {
            resnets,
            attentions,
            upsamplers: if upsample {
                vec![Upsample::new(c_out, device)]
            } else {
                Vec::new()
            },
        }
    }

    /// Takes its skips from the end of `skips`, last first.
    pub fn forward(
        &self,
        mut x: Tensor<B, 4>,
        temb: &Tensor<B, 2>,
        cond: &mut Conditioning<'_, B>,
        skips: &mut Vec<Tensor<B, 4>>,
    ) -> Tensor<B, 4> {
        for (j, resnet) in self.resnets.iter().enumerate() {
            if let Some(skip) = skips.pop() {
                x = Tensor::cat(vec![x, skip], 1);
            }
            x = resnet.forward(x, Some(temb.clone()));
            if let Some(attn) = self.attentions.get(j) {
                x = attn.forward(x, cond);
            }
        }
        // The next block's skips fix the size to reach: twice this one's, unless a side was odd
        // before the matching downsampling.
        let target = skips.last().map(|s| {
            let [_, _, h, w] = s.dims();
            [h, w]
        });
        for u in &self.upsamplers {
            x = match target {
                Some(size) => u.forward_to(x, size),
                None => u.forward(x),
            };
        }
        x
    }
}
