//! Mapping an ONNX export of U²-Net onto our convolutions.
//!
//! PyTorch's exporter names initializers after the graph (`onnx::Conv_1807`), not after the
//! state dict, and with the default constant folding it fuses every BatchNorm into the preceding
//! convolution. What survives reliably is the order: a traced export lists nodes in execution
//! order, which for U²-Net is the state-dict order of [`U2NetConfig::convs`]. So the k-th `Conv`
//! node is our k-th convolution, and is checked to be: the weight's shape, the dilation, the
//! padding, stride 1 and one group must all match, else the error names both our key and the
//! ONNX node and initializer. A `BatchNormalization` node that is the only consumer of a conv's
//! output (an export without fusion) is folded in here, as onnxruntime would at session start.

use std::collections::HashMap;
use std::path::Path;

use super::super::SegmentationError;
use super::config::{ConvSpec, U2NetConfig};
use super::onnx::{Graph, Node, OnnxTensor};
use super::rebnconv::{BatchNorm, FoldedConv};
use super::weights::U2NetWeights;

/// Loads the weights of an ONNX `ModelProto` (see the module documentation).
pub fn from_onnx(bytes: &[u8], path: &Path) -> Result<U2NetWeights, SegmentationError> {
    let graph = Graph::parse_model(bytes).map_err(|message| SegmentationError::Format {
        path: path.to_path_buf(),
        message: format!("not a safetensors, PyTorch or ONNX file ({message})"),
    })?;
    // Constants can arrive as initializers or as `Constant` nodes with a `value` tensor.
    let mut tensors: HashMap<&str, &OnnxTensor> =
        graph.initializers.iter().map(|t| (t.name, t)).collect();
    for node in graph.nodes.iter().filter(|n| n.op_type == "Constant") {
        if let (Some(out), Some(t)) = (
            node.outputs.first(),
            node.attribute("value").and_then(|a| a.t.as_ref()),
        ) {
            tensors.insert(out, t);
        }
    }
    let mut consumers: HashMap<&str, Vec<&Node>> = HashMap::new();
    for node in &graph.nodes {
        for input in &node.inputs {
            consumers.entry(input).or_default().push(node);
        }
    }
    let convs: Vec<&Node> = graph.nodes.iter().filter(|n| n.op_type == "Conv").collect();

    // The size, from the second conv (`stage1.rebnconv1`), the first where the sizes differ.
    let config = convs
        .get(1)
        .and_then(|n| n.inputs.get(1))
        .and_then(|w| tensors.get(w))
        .and_then(|t| t.dims.first())
        .and_then(|&mid| U2NetConfig::from_stage1_mid(usize::try_from(mid).ok()?))
        .ok_or_else(|| {
            SegmentationError::Unsupported(format!(
                "{}: the graph's second Conv is not U²-Net's stage1.rebnconv1 (32 or 16 output \
                 channels)",
                path.display()
            ))
        })?;
    let specs = config.convs();
    if convs.len() != specs.len() {
        return Err(SegmentationError::Unsupported(format!(
            "{}: {} Conv nodes, a {} model has {}",
            path.display(),
            convs.len(),
            config.kind,
            specs.len()
        )));
    }
    let folded = specs
        .iter()
        .zip(&convs)
        .map(|(spec, node)| map_conv(spec, node, &tensors, &consumers))
        .collect::<Result<Vec<_>, _>>()?;
    U2NetWeights::from_folded(config, folded)
}

/// "our key (ONNX node `n`, initializer `i`)", the name every error uses.
fn label(key: &str, node: &Node, init: &str) -> String {
    format!("{key} (ONNX node `{}`, initializer `{init}`)", node.name)
}

/// The values of input `index` of `node`, which must be a constant of shape `shape`.
fn constant(
    key: &str,
    node: &Node,
    index: usize,
    shape: &[usize],
    tensors: &HashMap<&str, &OnnxTensor>,
) -> Result<Vec<f32>, SegmentationError> {
    let name = node.inputs.get(index).copied().unwrap_or("");
    let key = label(key, node, name);
    let t = tensors
        .get(name)
        .ok_or_else(|| SegmentationError::MissingTensor { key: key.clone() })?;
    let found = t
        .shape()
        .map_err(|m| SegmentationError::Unsupported(format!("{key}: {m}")))?;
    if found != shape {
        return Err(SegmentationError::ShapeMismatch {
            key,
            expected: shape.to_vec(),
            found,
        });
    }
    t.to_f32()
        .map_err(|m| SegmentationError::Unsupported(format!("{key}: {m}")))
}

fn map_conv(
    spec: &ConvSpec,
    node: &Node,
    tensors: &HashMap<&str, &OnnxTensor>,
    consumers: &HashMap<&str, Vec<&Node>>,
) -> Result<FoldedConv, SegmentationError> {
    let wkey = format!("{}.weight", spec.conv);
    let weight = constant(&wkey, node, 1, &spec.weight_shape(), tensors)?;
    check_attributes(spec, node)?;
    let out = [spec.out_ch];
    let bias = match node.inputs.get(2).filter(|b| !b.is_empty()) {
        Some(_) => constant(&format!("{}.bias", spec.conv), node, 2, &out, tensors)?,
        None => vec![0.0; spec.out_ch],
    };
    let bn_node = node
        .outputs
        .first()
        .and_then(|o| consumers.get(o))
        .filter(|c| c.len() == 1 && c[0].op_type == "BatchNormalization")
        .map(|c| c[0]);
    let Some(bn_node) = bn_node else {
        // No BatchNormalization: fused by the exporter (or none in the model).
        return Ok(FoldedConv::fold(spec, &weight, &bias, None));
    };
    let Some(prefix) = &spec.bn else {
        return Err(SegmentationError::Unsupported(format!(
            "{}: a BatchNormalization follows a convolution that has none in U²-Net",
            label(&wkey, node, node.inputs.get(1).copied().unwrap_or(""))
        )));
    };
    let param = |name: &str, index: usize| {
        constant(&format!("{prefix}.{name}"), bn_node, index, &out, tensors)
    };
    let (gamma, beta) = (param("weight", 1)?, param("bias", 2)?);
    let (mean, var) = (param("running_mean", 3)?, param("running_var", 4)?);
    let eps = bn_node
        .attribute("epsilon")
        .and_then(|a| a.f)
        .map_or(1e-5, f64::from);
    let bn = BatchNorm {
        gamma: &gamma,
        beta: &beta,
        mean: &mean,
        var: &var,
        eps,
    };
    Ok(FoldedConv::fold(spec, &weight, &bias, Some(bn)))
}

/// Stride 1, one group, and our dilation and padding (ONNX defaults: 1, 1, 1, 0).
fn check_attributes(spec: &ConvSpec, node: &Node) -> Result<(), SegmentationError> {
    let ints = |name: &str, default: i64, n: usize| -> Vec<i64> {
        node.attribute(name)
            .map(|a| a.ints.clone())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| vec![default; n])
    };
    let (d, p) = (spec.dilation as i64, spec.padding() as i64);
    let k = spec.kernel as i64;
    let checks = [
        ("strides", ints("strides", 1, 2), vec![1, 1]),
        ("dilations", ints("dilations", 1, 2), vec![d, d]),
        ("pads", ints("pads", 0, 4), vec![p; 4]),
        ("kernel_shape", ints("kernel_shape", k, 2), vec![k, k]),
        (
            "group",
            vec![node.attribute("group").and_then(|a| a.i).unwrap_or(1)],
            vec![1],
        ),
    ];
    for (name, found, expected) in checks {
        if found != expected {
            return Err(SegmentationError::Unsupported(format!(
                "{}: {name} {found:?}, U²-Net has {expected:?}",
                label(
                    &format!("{}.weight", spec.conv),
                    node,
                    node.inputs.get(1).copied().unwrap_or("")
                )
            )));
        }
    }
    Ok(())
}
