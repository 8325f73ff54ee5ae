//! `op_node_v8_*`: node:v8's Serializer and Deserializer, one value at a
//! time through V8's own ValueSerializer and ValueDeserializer. The rest of
//! the stream (header, integers, doubles, raw bytes) is a plain encoding
//! kept in JS; only values need V8.
//!
//! Host objects (the array buffer views a `DefaultSerializer` handles
//! itself) call back into JS: when writing, the callback returns the
//! object's bytes; when reading, it is given the position in the stream,
//! reads there, and returns the object and where it stopped.

use deno_core::v8::{ValueDeserializerHelper, ValueSerializerHelper};
use deno_core::{JsBuffer, op2, v8};

use super::error::NodeError;

/// The wire format version V8 writes (`writeHeader`).
const WIRE_FORMAT_VERSION: u32 = 15;

/// The JS side of host objects. When reading, `base` is the address the
/// value's bytes start at and `offset` where they are in the caller's data,
/// so a callback learns its position in that data.
struct HostObjects<'s> {
  callback: Option<v8::Local<'s, v8::Function>>,
  base: usize,
  offset: usize,
}

impl HostObjects<'_> {
  fn throw(scope: &mut v8::PinScope<'_, '_>, message: &str) {
    if let Some(message) = v8::String::new(scope, message) {
      let error = v8::Exception::error(scope, message);
      scope.throw_exception(error);
    }
  }
}

impl v8::ValueSerializerImpl for HostObjects<'_> {
  fn throw_data_clone_error<'s>(
    &self,
    scope: &mut v8::PinScope<'s, '_>,
    message: v8::Local<'s, v8::String>,
  ) {
    let error = v8::Exception::error(scope, message);
    scope.throw_exception(error);
  }

  fn write_host_object<'s>(
    &self,
    scope: &mut v8::PinScope<'s, '_>,
    object: v8::Local<'s, v8::Object>,
    serializer: &dyn v8::ValueSerializerHelper,
  ) -> Option<bool> {
    let Some(callback) = self.callback else {
      Self::throw(scope, "Unserializable host object");
      return None;
    };
    let receiver = v8::undefined(scope).into();
    let bytes = callback.call(scope, receiver, &[object.into()])?;
    let Ok(bytes) = v8::Local::<v8::Uint8Array>::try_from(bytes) else {
      Self::throw(scope, "_writeHostObject must write bytes");
      return None;
    };
    let mut copy = vec![0; bytes.byte_length()];
    bytes.copy_contents(&mut copy);
    serializer.write_raw_bytes(&copy);
    Some(true)
  }
}

impl v8::ValueDeserializerImpl for HostObjects<'_> {
  fn read_host_object<'s>(
    &self,
    scope: &mut v8::PinScope<'s, '_>,
    deserializer: &dyn v8::ValueDeserializerHelper,
  ) -> Option<v8::Local<'s, v8::Object>> {
    let Some(callback) = self.callback else {
      Self::throw(scope, "Unable to deserialize a host object");
      return None;
    };
    let position = (deserializer.read_raw_bytes(0)?.as_ptr() as usize - self.base) + self.offset;
    let receiver = v8::undefined(scope).into();
    let position_arg = v8::Number::new(scope, position as f64).into();
    let scope = std::pin::pin!(v8::AllowJavascriptExecutionScope::new(scope));
    let scope = &mut scope.init();
    let read = callback.call(scope, receiver, &[position_arg])?;
    let read = v8::Local::<v8::Array>::try_from(read).ok()?;
    let object = read.get_index(scope, 0)?.to_object(scope)?;
    let end = read.get_index(scope, 1)?.uint32_value(scope)? as usize;
    if end < position {
      Self::throw(scope, "_readHostObject read backwards");
      return None;
    }
    deserializer.read_raw_bytes(end - position)?;
    Some(object)
  }
}

/// `(id, ArrayBuffer)` pairs from a flat JS array `[id, buffer, ...]`.
fn transfers<'s>(
  scope: &mut v8::PinScope<'s, '_>,
  list: v8::Local<'s, v8::Array>,
) -> Result<Vec<(u32, v8::Local<'s, v8::ArrayBuffer>)>, NodeError> {
  let mut pairs = Vec::new();
  for index in (0..list.length()).step_by(2) {
    let id = list
      .get_index(scope, index)
      .and_then(|id| id.uint32_value(scope))
      .ok_or(NodeError::Serdes("transfer id must be a number"))?;
    let buffer = list
      .get_index(scope, index + 1)
      .and_then(|buffer| v8::Local::<v8::ArrayBuffer>::try_from(buffer).ok())
      .ok_or(NodeError::Serdes("only an ArrayBuffer can be transferred"))?;
    pairs.push((id, buffer));
  }
  Ok(pairs)
}

/// One value in V8's wire format (no header), with `transfers` standing
/// for their ids and, when `views_as_host`, array buffer views handed to
/// `host` for their bytes.
#[op2(reentrant)]
#[buffer]
pub fn op_node_v8_write_value<'s>(
  scope: &mut v8::PinScope<'s, '_>,
  value: v8::Local<'s, v8::Value>,
  transferred: v8::Local<'s, v8::Array>,
  views_as_host: bool,
  host: v8::Local<'s, v8::Value>,
) -> Result<Vec<u8>, NodeError> {
  let transferred = transfers(scope, transferred)?;
  let host_objects = HostObjects {
    callback: v8::Local::<v8::Function>::try_from(host).ok(),
    base: 0,
    offset: 0,
  };
  let serializer = v8::ValueSerializer::new(scope, Box::new(host_objects));
  serializer.set_treat_array_buffer_views_as_host_objects(views_as_host);
  for (id, buffer) in transferred {
    serializer.transfer_array_buffer(id, buffer);
  }
  v8::tc_scope!(let scope, scope);
  let written = serializer.write_value(scope.get_current_context(), value);
  if scope.has_caught() || scope.has_terminated() {
    scope.rethrow();
    return Ok(Vec::new());
  }
  match written {
    Some(true) => Ok(serializer.release()),
    _ => Err(NodeError::Serdes("Unable to serialize value")),
  }
}

/// The value at `offset` of `data`, a stream of wire format `version`,
/// and where it ends: `[value, end]`.
#[op2(reentrant)]
pub fn op_node_v8_read_value<'s>(
  scope: &mut v8::PinScope<'s, '_>,
  #[buffer] data: JsBuffer,
  offset: u32,
  version: u32,
  transferred: v8::Local<'s, v8::Array>,
  host: v8::Local<'s, v8::Value>,
) -> Result<v8::Local<'s, v8::Array>, NodeError> {
  let offset = offset as usize;
  let rest = data
    .get(offset..)
    .ok_or(NodeError::Serdes("offset past the end"))?;
  if rest.is_empty() {
    return Err(NodeError::Serdes("Unable to deserialize cloned data."));
  }
  if version == 0 || version > WIRE_FORMAT_VERSION {
    return Err(NodeError::Serdes(
      "Unable to deserialize cloned data due to invalid or unsupported version.",
    ));
  }
  // V8 reads a value only after a header, so one stands in front of it.
  let mut stream = vec![0xFF];
  let mut rest_version = version;
  while rest_version >= 0x80 {
    stream.push((rest_version as u8) | 0x80);
    rest_version >>= 7;
  }
  stream.push(rest_version as u8);
  let header = stream.len();
  stream.extend_from_slice(rest);
  let transferred = transfers(scope, transferred)?;
  let host_objects = HostObjects {
    callback: v8::Local::<v8::Function>::try_from(host).ok(),
    base: stream.as_ptr() as usize + header,
    offset,
  };
  let deserializer = v8::ValueDeserializer::new(scope, Box::new(host_objects), &stream);
  if deserializer.read_header(scope.get_current_context()) != Some(true) {
    return Err(NodeError::Serdes(
      "Unable to deserialize cloned data due to invalid or unsupported version.",
    ));
  }
  for (id, buffer) in transferred {
    deserializer.transfer_array_buffer(id, buffer);
  }
  v8::tc_scope!(let scope, scope);
  let value = deserializer.read_value(scope.get_current_context());
  if scope.has_caught() || scope.has_terminated() {
    scope.rethrow();
    return Ok(v8::Array::new(scope, 0));
  }
  let value = value.ok_or(NodeError::Serdes("Unable to deserialize cloned data."))?;
  let end = deserializer
    .read_raw_bytes(0)
    .map(|at| at.as_ptr() as usize - stream.as_ptr() as usize - header + offset)
    .ok_or(NodeError::Serdes("Unable to deserialize cloned data."))?;
  let end = v8::Number::new(scope, end as f64).into();
  Ok(v8::Array::new_with_elements(scope, &[value, end]))
}
