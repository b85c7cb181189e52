#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| aquant_fuzz::ir_load(bytes));
