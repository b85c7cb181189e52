//! The sliding window that convolutions and pooling share, both ways: strides, dilations (when the op has
//! them) and padding. The IR's `pads_begin`/`pads_end` are ONNX's `pads` halves; its lower-case `auto_pad`
//! modes are ONNX's upper-case ones, "explicit" (or "notset") being ONNX's explicit `pads`. Written, the IR
//! always gets both the explicit pads and the mode, as OpenVINO writes them.

use aquant_onnx::{attr, AttributeProto, NodeProto};

use super::{ints, string};
use crate::write::unwritable;
use crate::xml::Layer;
use crate::IrError;

/// The ONNX `auto_pad` of an IR one, or none for explicit pads.
fn auto_pad(layer: &Layer) -> Result<Option<&'static str>, IrError> {
    Ok(
        match layer
            .data
            .get("auto_pad")
            .map_or("explicit", String::as_str)
        {
            "explicit" | "notset" => None,
            "valid" => Some("VALID"),
            "same_upper" => Some("SAME_UPPER"),
            "same_lower" => Some("SAME_LOWER"),
            other => return Err(layer.malformed(&format!("auto_pad '{other}' is not supported"))),
        },
    )
}

/// The ONNX attributes of an IR layer's window: strides, dilations (when the op has them) and padding.
pub fn read(layer: &Layer, dilations: bool) -> Result<Vec<AttributeProto>, IrError> {
    let mut attrs = vec![ints("strides", &layer.ints("strides")?)];
    if dilations {
        attrs.push(ints("dilations", &layer.ints("dilations")?));
    }
    match auto_pad(layer)? {
        Some(mode) => attrs.push(string("auto_pad", mode)),
        None => {
            let mut pads = layer.ints("pads_begin")?;
            pads.extend(layer.ints("pads_end")?);
            attrs.push(ints("pads", &pads));
        }
    }
    Ok(attrs)
}

/// The IR data of an ONNX node's window over `spatial` axes: strides, dilations (when the op has them),
/// pads and `auto_pad`, ONNX's defaults filled in.
pub fn write(
    node: &NodeProto,
    spatial: usize,
    dilations: bool,
) -> Result<Vec<(&'static str, String)>, IrError> {
    let ones = vec![1; spatial];
    let mut data = vec![(
        "strides",
        ints_text(&attr::ints(node, "strides").unwrap_or_else(|| ones.clone())),
    )];
    if dilations {
        data.push((
            "dilations",
            ints_text(&attr::ints(node, "dilations").unwrap_or_else(|| ones.clone())),
        ));
    }
    let pads = attr::ints(node, "pads").unwrap_or_else(|| vec![0; 2 * spatial]);
    if pads.len() != 2 * spatial {
        return Err(unwritable("pads do not match the kernel"));
    }
    data.push(("pads_begin", ints_text(&pads[..spatial])));
    data.push(("pads_end", ints_text(&pads[spatial..])));
    let auto = match attr::string(node, "auto_pad")
        .as_deref()
        .unwrap_or("NOTSET")
    {
        "NOTSET" => "explicit",
        "VALID" => "valid",
        "SAME_UPPER" => "same_upper",
        "SAME_LOWER" => "same_lower",
        other => return Err(unwritable(&format!("auto_pad '{other}'"))),
    };
    data.push(("auto_pad", auto.into()));
    Ok(data)
}

/// An integer list as IR data writes it ("1, 1").
pub fn ints_text(values: &[i64]) -> String {
    values
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
