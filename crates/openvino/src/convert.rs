//! aquant tensors to OpenVINO tensors and back.

use aquant::{Result, Tensor};
use ndarray::{ArrayD, IxDyn};
use openvino::{ElementType, Shape};

use crate::backend_error;

/// An OpenVINO tensor holding a copy of `tensor`.
pub fn to_openvino(tensor: &Tensor) -> Result<openvino::Tensor> {
    match tensor {
        Tensor::F32(a) => filled(ElementType::F32, a),
        Tensor::I64(a) => filled(ElementType::I64, a),
        Tensor::U8(a) => filled(ElementType::U8, a),
        Tensor::I8(a) => filled(ElementType::I8, a),
    }
}

/// A new OpenVINO tensor of `element` (the type of `T`) holding a copy of `array`.
fn filled<T: Copy>(element: ElementType, array: &ArrayD<T>) -> Result<openvino::Tensor> {
    let mut value = new_tensor(element, array.shape())?;
    let data = value
        .get_data_mut::<T>()
        .map_err(|e| backend_error("passing an input", e))?;
    for (to, from) in data.iter_mut().zip(array.iter()) {
        *to = *from;
    }
    Ok(value)
}

/// A u8 tensor holding `bytes`: how OpenVINO takes the weights of an IR read from memory.
pub fn bytes_tensor(bytes: &[u8]) -> Result<openvino::Tensor> {
    let mut value = new_tensor(ElementType::U8, &[bytes.len()])?;
    value
        .get_raw_data_mut()
        .map_err(|e| backend_error("passing the weights", e))?
        .copy_from_slice(bytes);
    Ok(value)
}

fn new_tensor(element: ElementType, shape: &[usize]) -> Result<openvino::Tensor> {
    let context = "passing an input";
    let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
    let shape = Shape::new(&dims).map_err(|e| backend_error(context, e))?;
    openvino::Tensor::new(element, &shape).map_err(|e| backend_error(context, e))
}

/// The aquant tensor of OpenVINO output `name`. f32 and i64 stay as they are; other integer outputs
/// (int32 indices, uint8…) are widened to f32 so metrics can read them, as with the other engines.
pub fn to_tensor(name: &str, value: &openvino::Tensor) -> Result<Tensor> {
    let context = format!("reading output '{name}'");
    let fail = |e: openvino::InferenceError| backend_error(&context, e);
    let dims: Vec<usize> = value
        .get_shape()
        .map_err(fail)?
        .get_dimensions()
        .iter()
        .map(|&d| d.max(0) as usize)
        .collect();
    let element = value.get_element_type().map_err(fail)?;
    let widened = |data: Vec<f32>| array(&context, &dims, data).map(Tensor::F32);
    match element {
        ElementType::F32 => array(
            &context,
            &dims,
            value.get_data::<f32>().map_err(fail)?.to_vec(),
        )
        .map(Tensor::F32),
        ElementType::I64 => array(
            &context,
            &dims,
            value.get_data::<i64>().map_err(fail)?.to_vec(),
        )
        .map(Tensor::I64),
        ElementType::I32 => widened(
            value
                .get_data::<i32>()
                .map_err(fail)?
                .iter()
                .map(|&v| v as f32)
                .collect(),
        ),
        ElementType::U8 => widened(
            value
                .get_data::<u8>()
                .map_err(fail)?
                .iter()
                .map(|&v| f32::from(v))
                .collect(),
        ),
        ElementType::I8 => widened(
            value
                .get_data::<i8>()
                .map_err(fail)?
                .iter()
                .map(|&v| f32::from(v))
                .collect(),
        ),
        other => Err(backend_error(
            &context,
            format!("element type {other} is not supported"),
        )),
    }
}

fn array<T>(context: &str, dims: &[usize], data: Vec<T>) -> Result<ArrayD<T>> {
    ArrayD::from_shape_vec(IxDyn(dims), data).map_err(|e| backend_error(context, e))
}
