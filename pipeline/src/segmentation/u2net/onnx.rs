//! A small reader of the protobuf wire format for the part of an ONNX `ModelProto` that holds
//! weights: the graph's nodes (op type, inputs, outputs, attributes) and its initializers.
//! Everything is borrowed from the file's bytes; nothing else of the model is decoded.
//!
//! Field numbers (onnx/onnx.proto3): `ModelProto.graph` = 7; `GraphProto.node` = 1,
//! `.initializer` = 5; `NodeProto.input` = 1, `.output` = 2, `.name` = 3, `.op_type` = 4,
//! `.attribute` = 5; `AttributeProto.name` = 1, `.f` = 2, `.i` = 3, `.t` = 5, `.ints` = 8;
//! `TensorProto.dims` = 1, `.data_type` = 2, `.float_data` = 4, `.name` = 8, `.raw_data` = 9,
//! `.double_data` = 10, `.data_location` = 14 (1 = external file, which we do not follow).

/// A decoded field value.
#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// Iterates over the fields of one message.
struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Fields { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or("truncated varint")?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint longer than 10 bytes".into())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| format!("field of {n} bytes runs past the end of its message"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// The next `(field number, value)`, or `None` at the end of the message.
    fn next_field(&mut self) -> Result<Option<(u64, Value<'a>)>, String> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let tag = self.varint()?;
        let value = match tag & 7 {
            0 => Value::Varint(self.varint()?),
            1 => Value::Fixed64(u64::from_le_bytes(
                self.take(8)?.try_into().map_err(|_| "fixed64")?,
            )),
            2 => {
                let n = usize::try_from(self.varint()?).map_err(|_| "length overflows")?;
                Value::Bytes(self.take(n)?)
            }
            5 => Value::Fixed32(u32::from_le_bytes(
                self.take(4)?.try_into().map_err(|_| "fixed32")?,
            )),
            w => return Err(format!("unsupported wire type {w} (field {})", tag >> 3)),
        };
        Ok(Some((tag >> 3, value)))
    }
}

fn string(v: Value<'_>) -> Result<&str, String> {
    match v {
        Value::Bytes(b) => std::str::from_utf8(b).map_err(|_| "string is not UTF-8".to_string()),
        _ => Err("expected a string field".into()),
    }
}

/// Appends a repeated integer field's value(s): packed (one length-delimited run of varints) or
/// one varint per occurrence; both encodings are legal for proto3 `repeated int64`.
fn push_ints(out: &mut Vec<i64>, v: Value<'_>) -> Result<(), String> {
    match v {
        Value::Varint(x) => out.push(x as i64),
        Value::Bytes(b) => {
            let mut f = Fields::new(b);
            while f.pos < b.len() {
                out.push(f.varint()? as i64);
            }
        }
        _ => return Err("expected an integer field".into()),
    }
    Ok(())
}

/// A tensor as stored in the file.
#[derive(Debug, Clone, Default)]
pub struct OnnxTensor<'a> {
    pub name: &'a str,
    pub dims: Vec<i64>,
    pub data_type: i64,
    raw: Option<&'a [u8]>,
    /// `float_data` as stored (packed little-endian f32 runs, or single fixed32 values).
    float_runs: Vec<&'a [u8]>,
    float_single: Vec<f32>,
    double_runs: Vec<&'a [u8]>,
    external: bool,
}

/// ONNX `TensorProto.DataType` values we convert.
const FLOAT: i64 = 1;
const FLOAT16: i64 = 10;
const DOUBLE: i64 = 11;

impl<'a> OnnxTensor<'a> {
    fn parse(buf: &'a [u8]) -> Result<Self, String> {
        let mut t = OnnxTensor::default();
        let mut f = Fields::new(buf);
        while let Some((field, v)) = f.next_field()? {
            match (field, v) {
                (1, v) => push_ints(&mut t.dims, v)?,
                (2, Value::Varint(x)) => t.data_type = x as i64,
                (4, Value::Bytes(b)) => t.float_runs.push(b),
                (4, Value::Fixed32(x)) => t.float_single.push(f32::from_bits(x)),
                (8, v) => t.name = string(v)?,
                (9, Value::Bytes(b)) => t.raw = Some(b),
                (10, Value::Bytes(b)) => t.double_runs.push(b),
                (10, Value::Fixed64(x)) => t.float_single.push(f64::from_bits(x) as f32),
                (14, Value::Varint(1)) => t.external = true,
                _ => {}
            }
        }
        Ok(t)
    }

    /// The shape; negative dimensions are an error.
    pub fn shape(&self) -> Result<Vec<usize>, String> {
        self.dims
            .iter()
            .map(|&d| usize::try_from(d).map_err(|_| format!("dimension {d}")))
            .collect()
    }

    /// The values as f32 (FLOAT, FLOAT16 or DOUBLE; raw little-endian data or the typed fields),
    /// checked against the shape's element count.
    pub fn to_f32(&self) -> Result<Vec<f32>, String> {
        if self.external {
            return Err("its data is in an external file, which is not supported".into());
        }
        let values: Vec<f32> = match (self.data_type, self.raw) {
            (FLOAT, Some(raw)) => le_f32(raw),
            (FLOAT16, Some(raw)) => raw
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            (DOUBLE, Some(raw)) => le_f64(raw),
            (FLOAT, None) => {
                let mut v: Vec<f32> = self.float_runs.iter().flat_map(|r| le_f32(r)).collect();
                v.extend(&self.float_single);
                v
            }
            (DOUBLE, None) => {
                let mut v: Vec<f32> = self.double_runs.iter().flat_map(|r| le_f64(r)).collect();
                v.extend(&self.float_single);
                v
            }
            (other, _) => return Err(format!("unsupported data type {other}")),
        };
        let n: usize = self.shape()?.iter().product();
        if values.len() != n {
            return Err(format!(
                "{} values for shape {:?} ({n} elements)",
                values.len(),
                self.dims
            ));
        }
        Ok(values)
    }
}

fn le_f32(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn le_f64(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32)
        .collect()
}

/// One attribute: the scalar and list forms we use (ints, int, float, tensor).
#[derive(Debug, Clone, Default)]
pub struct Attribute<'a> {
    pub name: &'a str,
    pub i: Option<i64>,
    pub f: Option<f32>,
    pub ints: Vec<i64>,
    pub t: Option<OnnxTensor<'a>>,
}

/// One node of the graph.
#[derive(Debug, Clone, Default)]
pub struct Node<'a> {
    pub name: &'a str,
    pub op_type: &'a str,
    pub inputs: Vec<&'a str>,
    pub outputs: Vec<&'a str>,
    pub attributes: Vec<Attribute<'a>>,
}

impl<'a> Node<'a> {
    pub fn attribute(&self, name: &str) -> Option<&Attribute<'a>> {
        self.attributes.iter().find(|a| a.name == name)
    }

    fn parse(buf: &'a [u8]) -> Result<Self, String> {
        let mut n = Node::default();
        let mut f = Fields::new(buf);
        while let Some((field, v)) = f.next_field()? {
            match field {
                1 => n.inputs.push(string(v)?),
                2 => n.outputs.push(string(v)?),
                3 => n.name = string(v)?,
                4 => n.op_type = string(v)?,
                5 => {
                    if let Value::Bytes(b) = v {
                        n.attributes.push(parse_attribute(b)?);
                    }
                }
                _ => {}
            }
        }
        Ok(n)
    }
}

fn parse_attribute(buf: &[u8]) -> Result<Attribute<'_>, String> {
    let mut a = Attribute::default();
    let mut f = Fields::new(buf);
    while let Some((field, v)) = f.next_field()? {
        match (field, v) {
            (1, v) => a.name = string(v)?,
            (2, Value::Fixed32(x)) => a.f = Some(f32::from_bits(x)),
            (3, Value::Varint(x)) => a.i = Some(x as i64),
            (5, Value::Bytes(b)) => a.t = Some(OnnxTensor::parse(b)?),
            (8, v) => push_ints(&mut a.ints, v)?,
            _ => {}
        }
    }
    Ok(a)
}

/// The graph: nodes in file order (a traced export lists them in execution order) and the
/// initializers by name.
#[derive(Debug, Clone, Default)]
pub struct Graph<'a> {
    pub nodes: Vec<Node<'a>>,
    pub initializers: Vec<OnnxTensor<'a>>,
}

impl<'a> Graph<'a> {
    /// Parses a serialized `ModelProto`.
    pub fn parse_model(bytes: &'a [u8]) -> Result<Self, String> {
        let mut graph = None;
        let mut f = Fields::new(bytes);
        while let Some((field, v)) = f.next_field()? {
            if let (7, Value::Bytes(b)) = (field, v) {
                graph = Some(b);
            }
        }
        let graph = graph.ok_or("no graph (not an ONNX model)")?;
        let mut g = Graph::default();
        let mut f = Fields::new(graph);
        while let Some((field, v)) = f.next_field()? {
            match (field, v) {
                (1, Value::Bytes(b)) => g.nodes.push(Node::parse(b)?),
                (5, Value::Bytes(b)) => g.initializers.push(OnnxTensor::parse(b)?),
                _ => {}
            }
        }
        Ok(g)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn bytes_field(field: u64, payload: &[u8], out: &mut Vec<u8>) {
        varint(field << 3 | 2, out);
        varint(payload.len() as u64, out);
        out.extend_from_slice(payload);
    }

    #[test]
    fn parses_nodes_and_initializers() {
        // TensorProto: dims [2] (unpacked), FLOAT, name "w", float_data packed [1.5, -2].
        let mut t = Vec::new();
        varint(1 << 3, &mut t);
        varint(2, &mut t);
        varint(2 << 3, &mut t);
        varint(1, &mut t);
        bytes_field(8, b"w", &mut t);
        let floats: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        bytes_field(4, &floats, &mut t);
        // AttributeProto: name "dilations", ints packed [2, 2].
        let mut a = Vec::new();
        bytes_field(1, b"dilations", &mut a);
        bytes_field(8, &[2, 2], &mut a);
        // NodeProto: inputs x, w; output y; op Conv.
        let mut n = Vec::new();
        bytes_field(1, b"x", &mut n);
        bytes_field(1, b"w", &mut n);
        bytes_field(2, b"y", &mut n);
        bytes_field(4, b"Conv", &mut n);
        bytes_field(5, &a, &mut n);
        let mut g = Vec::new();
        bytes_field(1, &n, &mut g);
        bytes_field(5, &t, &mut g);
        let mut m = Vec::new();
        varint(1 << 3, &mut m); // ir_version
        varint(6, &mut m);
        bytes_field(7, &g, &mut m);

        let graph = Graph::parse_model(&m).unwrap();
        assert_eq!(graph.nodes.len(), 1);
        let node = &graph.nodes[0];
        assert_eq!(
            (node.op_type, node.inputs.as_slice()),
            ("Conv", &["x", "w"][..])
        );
        assert_eq!(node.attribute("dilations").unwrap().ints, vec![2, 2]);
        let w = &graph.initializers[0];
        assert_eq!((w.name, w.shape().unwrap()), ("w", vec![2]));
        assert_eq!(w.to_f32().unwrap(), vec![1.5, -2.0]);

        // Any truncation is an error, never a panic.
        for cut in 1..m.len() {
            let _ = Graph::parse_model(&m[..cut]);
        }
        assert!(Graph::parse_model(&m[..m.len() - 3]).is_err());
    }
}
