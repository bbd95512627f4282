//! The two released U²-Net sizes and the list of their convolutions.
//!
//! Everything else (the expected state-dict keys and shapes, the ONNX conv matching, the module
//! tree) is generated from [`U2NetConfig::convs`], so the model, the strict loader and the ONNX
//! mapper cannot disagree about which tensor goes where.

use super::super::U2NetKind;

/// The block type of one stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Block {
    /// RSU-L (`RSU7`, `RSU6`, `RSU5`, `RSU4`): an L-level U-Net with 2×2 ceil-mode max pools.
    Rsu(usize),
    /// RSU-4F: dilated convolutions (1, 2, 4, 8) instead of pooling.
    Rsu4f,
}

/// One stage: `Block(in_ch, mid_ch, out_ch)` as the PyTorch constructors are called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stage {
    pub name: &'static str,
    pub block: Block,
    pub in_ch: usize,
    pub mid_ch: usize,
    pub out_ch: usize,
}

const fn stage(name: &'static str, block: Block, i: usize, m: usize, o: usize) -> Stage {
    Stage {
        name,
        block,
        in_ch: i,
        mid_ch: m,
        out_ch: o,
    }
}

/// The architecture of one size: 6 encoder stages, 5 decoder stages (`stage5d` … `stage1d`),
/// six side convolutions and the 1×1 fusion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct U2NetConfig {
    pub kind: U2NetKind,
    pub encoder: [Stage; 6],
    pub decoder: [Stage; 5],
    /// Input channels of `side1` … `side6` (the outputs of stage1d … stage5d and stage6).
    pub side_in: [usize; 6],
}

/// One convolution in forward order, which is also the PyTorch state-dict order and the order
/// of the `Conv` nodes in a traced ONNX export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvSpec {
    /// Key prefix of the convolution (`stage1.rebnconvin.conv_s1`, `side1`, `outconv`).
    pub conv: String,
    /// Key prefix of the BatchNorm that follows it (`stage1.rebnconvin.bn_s1`), REBNCONV only.
    pub bn: Option<String>,
    pub in_ch: usize,
    pub out_ch: usize,
    pub kernel: usize,
    pub dilation: usize,
}

impl ConvSpec {
    /// `[out, in, kh, kw]`, PyTorch's weight layout.
    pub fn weight_shape(&self) -> [usize; 4] {
        [self.out_ch, self.in_ch, self.kernel, self.kernel]
    }

    /// Padding that keeps the spatial size (`padding = dilation` for 3×3, 0 for 1×1).
    pub fn padding(&self) -> usize {
        self.dilation * (self.kernel / 2)
    }

    /// REBNCONV ends in BatchNorm + ReLU; the side and fusion convolutions are plain.
    pub fn relu(&self) -> bool {
        self.bn.is_some()
    }

    /// How many tensors the PyTorch code concatenates (in equal channel halves) to form this
    /// conv's input: 2 for every decoder REBNCONV (`rebnconv…d`, `cat(up, skip)`) and for the
    /// first conv of a decoder stage (`stage…d.rebnconvin`), else 1. The port convolves the
    /// halves separately and adds, which is the same sum without materialising the concatenation.
    pub fn inputs(&self) -> usize {
        let decoder_stage_input = self
            .conv
            .split('.')
            .next()
            .is_some_and(|s| s.starts_with("stage") && s.ends_with('d'))
            && self.conv.contains(".rebnconvin.");
        if self.conv.ends_with("d.conv_s1") || decoder_stage_input {
            2
        } else {
            1
        }
    }
}

impl U2NetConfig {
    /// `U2NET(3, 1)`: the 176 MB model (rembg's `u2net.onnx`).
    pub const fn u2net() -> Self {
        use Block::*;
        U2NetConfig {
            kind: U2NetKind::U2net,
            encoder: [
                stage("stage1", Rsu(7), 3, 32, 64),
                stage("stage2", Rsu(6), 64, 32, 128),
                stage("stage3", Rsu(5), 128, 64, 256),
                stage("stage4", Rsu(4), 256, 128, 512),
                stage("stage5", Rsu4f, 512, 256, 512),
                stage("stage6", Rsu4f, 512, 256, 512),
            ],
            decoder: [
                stage("stage5d", Rsu4f, 1024, 256, 512),
                stage("stage4d", Rsu(4), 1024, 128, 256),
                stage("stage3d", Rsu(5), 512, 64, 128),
                stage("stage2d", Rsu(6), 256, 32, 64),
                stage("stage1d", Rsu(7), 128, 16, 64),
            ],
            side_in: [64, 64, 128, 256, 512, 512],
        }
    }

    /// `U2NETP(3, 1)`: the 4.7 MB model (rembg's `u2netp.onnx`).
    pub const fn u2netp() -> Self {
        use Block::*;
        U2NetConfig {
            kind: U2NetKind::U2netp,
            encoder: [
                stage("stage1", Rsu(7), 3, 16, 64),
                stage("stage2", Rsu(6), 64, 16, 64),
                stage("stage3", Rsu(5), 64, 16, 64),
                stage("stage4", Rsu(4), 64, 16, 64),
                stage("stage5", Rsu4f, 64, 16, 64),
                stage("stage6", Rsu4f, 64, 16, 64),
            ],
            decoder: [
                stage("stage5d", Rsu4f, 128, 16, 64),
                stage("stage4d", Rsu(4), 128, 16, 64),
                stage("stage3d", Rsu(5), 128, 16, 64),
                stage("stage2d", Rsu(6), 128, 16, 64),
                stage("stage1d", Rsu(7), 128, 16, 64),
            ],
            side_in: [64; 6],
        }
    }

    pub const fn of(kind: U2NetKind) -> Self {
        match kind {
            U2NetKind::U2net => Self::u2net(),
            U2NetKind::U2netp => Self::u2netp(),
        }
    }

    /// The size whose `stage1.rebnconv1` has `mid` output channels (32: U2NET, 16: U2NETP) —
    /// the first tensor where the two sizes differ.
    pub fn from_stage1_mid(mid: usize) -> Option<Self> {
        [Self::u2net(), Self::u2netp()]
            .into_iter()
            .find(|c| c.encoder[0].mid_ch == mid)
    }

    /// All convolutions in forward order (119 for both sizes).
    pub fn convs(&self) -> Vec<ConvSpec> {
        let mut out = Vec::with_capacity(119);
        for s in self.encoder.iter().chain(self.decoder.iter()) {
            stage_convs(s, &mut out);
        }
        for (i, &c) in self.side_in.iter().enumerate() {
            out.push(plain(format!("side{}", i + 1), c, 1, 3));
        }
        out.push(plain("outconv".into(), 6, 1, 1));
        out
    }

    /// The state-dict keys and shapes the model expects, in state-dict order, without
    /// `num_batches_tracked` (a training counter that inference ignores).
    pub fn manifest(&self) -> Vec<(String, Vec<usize>)> {
        let mut out = Vec::new();
        for c in self.convs() {
            out.push((format!("{}.weight", c.conv), c.weight_shape().to_vec()));
            out.push((format!("{}.bias", c.conv), vec![c.out_ch]));
            if let Some(bn) = &c.bn {
                for p in ["weight", "bias", "running_mean", "running_var"] {
                    out.push((format!("{bn}.{p}"), vec![c.out_ch]));
                }
            }
        }
        out
    }
}

fn plain(conv: String, in_ch: usize, out_ch: usize, kernel: usize) -> ConvSpec {
    ConvSpec {
        conv,
        bn: None,
        in_ch,
        out_ch,
        kernel,
        dilation: 1,
    }
}

fn rebnconv(stage: &str, name: &str, in_ch: usize, out_ch: usize, dilation: usize) -> ConvSpec {
    ConvSpec {
        conv: format!("{stage}.{name}.conv_s1"),
        bn: Some(format!("{stage}.{name}.bn_s1")),
        in_ch,
        out_ch,
        kernel: 3,
        dilation,
    }
}

/// The REBNCONVs of one stage in the order its `__init__` registers (= its forward runs) them:
/// `rebnconvin`, the encoder `rebnconv1..L`, the decoder `rebnconv(L-1)d..1d`.
fn stage_convs(s: &Stage, out: &mut Vec<ConvSpec>) {
    let (n, i, m, o) = (s.name, s.in_ch, s.mid_ch, s.out_ch);
    out.push(rebnconv(n, "rebnconvin", i, o, 1));
    match s.block {
        Block::Rsu(levels) => {
            out.push(rebnconv(n, "rebnconv1", o, m, 1));
            for l in 2..levels {
                out.push(rebnconv(n, &format!("rebnconv{l}"), m, m, 1));
            }
            out.push(rebnconv(n, &format!("rebnconv{levels}"), m, m, 2));
            for l in (2..levels).rev() {
                out.push(rebnconv(n, &format!("rebnconv{l}d"), 2 * m, m, 1));
            }
            out.push(rebnconv(n, "rebnconv1d", 2 * m, o, 1));
        }
        Block::Rsu4f => {
            out.push(rebnconv(n, "rebnconv1", o, m, 1));
            out.push(rebnconv(n, "rebnconv2", m, m, 2));
            out.push(rebnconv(n, "rebnconv3", m, m, 4));
            out.push(rebnconv(n, "rebnconv4", m, m, 8));
            out.push(rebnconv(n, "rebnconv3d", 2 * m, m, 4));
            out.push(rebnconv(n, "rebnconv2d", 2 * m, m, 2));
            out.push(rebnconv(n, "rebnconv1d", 2 * m, o, 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(c: &U2NetConfig) -> usize {
        c.manifest()
            .iter()
            .filter(|(k, _)| !k.contains("running_"))
            .map(|(_, s)| s.iter().product::<usize>())
            .sum()
    }

    #[test]
    fn parameter_counts_match_pytorch() {
        // `sum(p.numel() for p in model.parameters())` of the PyTorch models.
        assert_eq!(params(&U2NetConfig::u2net()), 44_009_869);
        assert_eq!(params(&U2NetConfig::u2netp()), 1_131_181);
        assert_eq!(U2NetConfig::u2net().convs().len(), 119);
        assert_eq!(U2NetConfig::u2netp().manifest().len(), 686);
    }

    #[test]
    fn rsu7_order_and_dilations() {
        let convs = U2NetConfig::u2netp().convs();
        let names: Vec<&str> = convs[..14].iter().map(|c| c.conv.as_str()).collect();
        assert_eq!(names[0], "stage1.rebnconvin.conv_s1");
        assert_eq!(names[7], "stage1.rebnconv7.conv_s1");
        assert_eq!(names[8], "stage1.rebnconv6d.conv_s1");
        assert_eq!(names[13], "stage1.rebnconv1d.conv_s1");
        assert_eq!(convs[7].dilation, 2);
        assert_eq!(convs[13].weight_shape(), [64, 32, 3, 3]);
        assert_eq!(convs[118].weight_shape(), [1, 6, 1, 1]);
        let split: Vec<&str> = convs
            .iter()
            .filter(|c| c.inputs() == 2)
            .map(|c| c.conv.as_str())
            .collect();
        // 6 + 5 + 4 + 3 + 3 + 3 decoder REBNCONVs in the encoder stages, as many again plus the
        // five decoder stages' first convs in the decoder.
        assert_eq!(split.len(), 2 * (6 + 5 + 4 + 3 + 3) + 3 + 5);
        assert!(split.contains(&"stage1d.rebnconvin.conv_s1"));
        assert!(split.contains(&"stage6.rebnconv3d.conv_s1"));
        assert!(!split.contains(&"stage1d.rebnconv1.conv_s1"));
    }
}
