//! The subset of the pickle virtual machine (protocols 2–4) that `torch.save` of a state dict
//! produces. Objects are built only for the callables a state dict uses (`OrderedDict`, the
//! tensor and parameter rebuild functions); anything else becomes [`Value::Object`].

use std::collections::HashMap;

/// A tensor's view of a storage.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef {
    /// `FloatStorage`, `LongStorage`, …
    pub storage_type: String,
    pub storage_key: String,
    pub offset: usize,
    pub shape: Vec<usize>,
    pub stride: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    /// Keys and values in insertion order (an `OrderedDict` is a dict here).
    Dict(Vec<(Value, Value)>),
    /// `module.name`.
    Global(String),
    /// A persistent id `('storage', torch.<Type>Storage, key, location, numel, …)`.
    Storage {
        storage_type: String,
        key: String,
    },
    Tensor(TensorRef),
    /// The result of a callable we do not model.
    Object(String),
    Mark,
}

/// A pickle machine over one byte stream; [`Machine::run`] unpickles the next object, so the
/// legacy format's consecutive pickles are read by calling it repeatedly.
#[derive(Debug)]
pub struct Machine<'a> {
    bytes: &'a [u8],
    pos: usize,
    memo: HashMap<u64, Value>,
    /// Storage key → storage type, for every storage seen.
    storages: HashMap<String, String>,
}

impl<'a> Machine<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Machine {
            bytes,
            pos: 0,
            memo: HashMap::new(),
            storages: HashMap::new(),
        }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes per element of storage `key`, if it was seen and has a known type.
    pub fn storage_element_size(&self, key: &str) -> Option<usize> {
        self.storages
            .get(key)
            .and_then(|t| super::element(t).ok())
            .map(|(size, _)| size)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or("truncated pickle")?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn uint(&mut self, n: usize) -> Result<u64, String> {
        let b = self.take(n)?;
        Ok(b.iter().rev().fold(0u64, |acc, &x| acc << 8 | u64::from(x)))
    }

    fn line(&mut self) -> Result<String, String> {
        let rest = &self.bytes[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("truncated pickle")?;
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.pos += n + 1;
        Ok(s)
    }

    fn text(&mut self, len_bytes: usize) -> Result<Value, String> {
        let n = usize::try_from(self.uint(len_bytes)?).map_err(|_| "length")?;
        Ok(Value::Str(
            String::from_utf8_lossy(self.take(n)?).into_owned(),
        ))
    }

    /// Runs until `STOP` and returns the unpickled object.
    pub fn run(&mut self) -> Result<Value, String> {
        let mut stack: Vec<Value> = Vec::new();
        loop {
            let op = self.take(1)?[0];
            match op {
                0x80 => {
                    self.take(1)?; // PROTO
                }
                0x95 => {
                    self.take(8)?; // FRAME
                }
                b'.' => return stack.pop().ok_or_else(|| "empty stack at STOP".to_string()),
                b'(' => stack.push(Value::Mark),
                b'}' => stack.push(Value::Dict(Vec::new())),
                b']' => stack.push(Value::List(Vec::new())),
                b')' => stack.push(Value::Tuple(Vec::new())),
                b'N' => stack.push(Value::None),
                0x88 => stack.push(Value::Bool(true)),
                0x89 => stack.push(Value::Bool(false)),
                b'K' => stack.push(Value::Int(self.uint(1)?.into())),
                b'M' => stack.push(Value::Int(self.uint(2)?.into())),
                b'J' => stack.push(Value::Int((self.uint(4)? as u32 as i32).into())),
                0x8a => {
                    let n = self.uint(1)? as usize;
                    let b = self.take(n)?;
                    if n > 16 {
                        return Err("integer too large".into());
                    }
                    let mut v: i128 = 0;
                    for (i, &x) in b.iter().enumerate() {
                        v |= i128::from(x) << (8 * i);
                    }
                    if n > 0 && n < 16 && b[n - 1] & 0x80 != 0 {
                        v -= 1i128 << (8 * n);
                    }
                    stack.push(Value::Int(v));
                }
                b'G' => {
                    let b = self.take(8)?;
                    stack.push(Value::Float(f64::from_be_bytes(
                        b.try_into().map_err(|_| "float")?,
                    )));
                }
                b'X' | b'T' => stack.push(self.text(4)?),
                0x8c | b'U' => stack.push(self.text(1)?),
                0x8d => stack.push(self.text(8)?),
                b'B' | b'C' => {
                    let n = self.uint(if op == b'B' { 4 } else { 1 })? as usize;
                    stack.push(Value::Bytes(self.take(n)?.to_vec()));
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    stack.push(Value::Global(format!("{module}.{name}")));
                }
                0x93 => {
                    let name = pop(&mut stack)?;
                    let module = pop(&mut stack)?;
                    match (module, name) {
                        (Value::Str(m), Value::Str(n)) => {
                            stack.push(Value::Global(format!("{m}.{n}")))
                        }
                        _ => return Err("STACK_GLOBAL of non-strings".into()),
                    }
                }
                b'q' | b'r' | 0x94 => {
                    let id = match op {
                        b'q' => self.uint(1)?,
                        b'r' => self.uint(4)?,
                        _ => self.memo.len() as u64,
                    };
                    let top = stack.last().ok_or("PUT on an empty stack")?.clone();
                    self.memo.insert(id, top);
                }
                b'h' | b'j' => {
                    let id = self.uint(if op == b'h' { 1 } else { 4 })?;
                    let v = self.memo.get(&id).ok_or("GET of an unknown memo")?.clone();
                    stack.push(v);
                }
                b't' | b'l' | b'd' => {
                    let items = pop_mark(&mut stack)?;
                    stack.push(match op {
                        b't' => Value::Tuple(items),
                        b'l' => Value::List(items),
                        _ => Value::Dict(pairs(items)?),
                    });
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    if stack.len() < n {
                        return Err("TUPLE on a short stack".into());
                    }
                    let items = stack.split_off(stack.len() - n);
                    stack.push(Value::Tuple(items));
                }
                b'a' => {
                    let v = pop(&mut stack)?;
                    match stack.last_mut() {
                        Some(Value::List(l)) => l.push(v),
                        _ => return Err("APPEND to a non-list".into()),
                    }
                }
                b'e' => {
                    let items = pop_mark(&mut stack)?;
                    match stack.last_mut() {
                        Some(Value::List(l)) => l.extend(items),
                        _ => return Err("APPENDS to a non-list".into()),
                    }
                }
                b's' | b'u' => {
                    let items = if op == b's' {
                        let v = pop(&mut stack)?;
                        vec![pop(&mut stack)?, v]
                    } else {
                        pop_mark(&mut stack)?
                    };
                    match stack.last_mut() {
                        Some(Value::Dict(d)) => d.extend(pairs(items)?),
                        // Items set on an opaque object: ignored.
                        Some(Value::Object(_)) => {}
                        _ => return Err("SETITEM on a non-dict".into()),
                    }
                }
                b'b' => {
                    pop(&mut stack)?; // BUILD: state (e.g. `_metadata`) is not needed.
                }
                b'Q' => {
                    let pid = pop(&mut stack)?;
                    let storage = self.storage(pid)?;
                    stack.push(storage);
                }
                b'R' | 0x81 => {
                    let args = pop(&mut stack)?;
                    let callable = pop(&mut stack)?;
                    stack.push(reduce(callable, args)?);
                }
                other => return Err(format!("unsupported pickle opcode 0x{other:02x}")),
            }
        }
    }

    fn storage(&mut self, pid: Value) -> Result<Value, String> {
        let Value::Tuple(t) = pid else {
            return Err("persistent id is not a tuple".into());
        };
        match t.as_slice() {
            [Value::Str(tag), Value::Global(ty), Value::Str(key), ..] if tag == "storage" => {
                let ty = ty.rsplit('.').next().unwrap_or_default().to_string();
                self.storages.insert(key.clone(), ty.clone());
                Ok(Value::Storage {
                    storage_type: ty,
                    key: key.clone(),
                })
            }
            _ => Err("unsupported persistent id".into()),
        }
    }
}

fn pop(stack: &mut Vec<Value>) -> Result<Value, String> {
    stack.pop().ok_or_else(|| "pickle stack underflow".into())
}

fn pop_mark(stack: &mut Vec<Value>) -> Result<Vec<Value>, String> {
    let mark = stack
        .iter()
        .rposition(|v| matches!(v, Value::Mark))
        .ok_or("no MARK on the stack")?;
    let items = stack.split_off(mark + 1);
    stack.pop();
    Ok(items)
}

fn pairs(items: Vec<Value>) -> Result<Vec<(Value, Value)>, String> {
    if !items.len().is_multiple_of(2) {
        return Err("odd number of dict items".into());
    }
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Ok(out)
}

fn usizes(v: &Value) -> Result<Vec<usize>, String> {
    match v {
        Value::Tuple(items) | Value::List(items) => items
            .iter()
            .map(|x| match x {
                Value::Int(i) => usize::try_from(*i).map_err(|_| "negative size".to_string()),
                _ => Err("size is not an integer".into()),
            })
            .collect(),
        _ => Err("size is not a tuple".into()),
    }
}

/// Applies the callables a state dict uses.
fn reduce(callable: Value, args: Value) -> Result<Value, String> {
    let Value::Global(name) = callable else {
        return Ok(Value::Object("?".into()));
    };
    let args = match args {
        Value::Tuple(a) => a,
        _ => Vec::new(),
    };
    match name.as_str() {
        "collections.OrderedDict" | "builtins.dict" => Ok(Value::Dict(Vec::new())),
        "torch._utils._rebuild_tensor_v2" | "torch._utils._rebuild_tensor" => {
            let [storage, offset, size, stride, ..] = args.as_slice() else {
                return Err(format!("{name} with {} arguments", args.len()));
            };
            let Value::Storage { storage_type, key } = storage else {
                return Err("tensor without a storage".into());
            };
            let Value::Int(offset) = offset else {
                return Err("tensor offset is not an integer".into());
            };
            Ok(Value::Tensor(TensorRef {
                storage_type: storage_type.clone(),
                storage_key: key.clone(),
                offset: usize::try_from(*offset).map_err(|_| "negative offset")?,
                shape: usizes(size)?,
                stride: usizes(stride)?,
            }))
        }
        "torch._utils._rebuild_parameter" => args
            .into_iter()
            .next()
            .ok_or_else(|| "empty parameter".into()),
        _ => Ok(Value::Object(name)),
    }
}
