//! Target `config`: bytes → POT JSON config parse, with its validation into quantization and accuracy-control
//! parameters (`aquant::config::parse`). Any input may be refused with an error; none may panic.

/// Parses `bytes` as a config (when they are UTF-8), checking what a parsed config promises.
pub fn config(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    if let Ok(config) = aquant::config::parse(text) {
        // A config that parses has validated parameters: validating them again must agree.
        assert!(config.algorithm.quantization().validate().is_ok());
        if let Some(control) = config.algorithm.control() {
            assert!(control.validate().is_ok());
        }
        assert!(!config.metrics.is_empty());
    }
}
