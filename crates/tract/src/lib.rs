pub use tract_onnx;
