//! The int8 features of the CPU this process runs on.
//!
//! Whether an int8 model computes what its QDQ graph says depends on the CPU: without VNNI, x86 int8 kernels
//! (ONNX Runtime's MLAS, oneDNN) add each pair of u8×s8 products in saturating int16 (`vpmaddubsw`); with VNNI
//! (AVX-512 VNNI, AVX-VNNI) or AMX the sums are int32. With AMX the engines also choose other kernels by
//! problem size (oneDNN's AMX brgemm for large batches, VNNI for small ones), so on such a CPU a model's output
//! can depend on the batch it runs in; with bf16 instructions (AVX-512 BF16, AMX-BF16) OpenVINO's CPU plugin
//! computes floating-point layers in bf16 unless told otherwise. Every measured figure aquant reports says
//! which kind of CPU it came from, so these are read from CPUID as the kernels read them (an emulator's CPU
//! model included), never from a file that describes the host.

use serde::{Deserialize, Serialize};

/// The CPU features that decide how x86 int8 kernels accumulate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuFeatures {
    /// AVX2: the int8 kernels' baseline on x86 (`vpmaddubsw`, saturating int16 pair sums).
    pub avx2: bool,
    /// AVX-512 VNNI (`vpdpbusd`: int32 sums, no saturation).
    pub avx512_vnni: bool,
    /// AVX-VNNI, the VEX-encoded VNNI of recent Intel and AMD cores.
    pub avx_vnni: bool,
    /// AMX with int8 tiles.
    pub amx_int8: bool,
    /// AMX with bf16 tiles.
    #[serde(default)]
    pub amx_bf16: bool,
    /// AVX-512 BF16 (bf16 dot products).
    #[serde(default)]
    pub avx512_bf16: bool,
}

impl CpuFeatures {
    /// The features of the CPU this process runs on (all false off x86-64).
    pub fn detect() -> CpuFeatures {
        detect()
    }

    /// Whether int8 dot products accumulate in int32 from the first product (no int16 saturation).
    pub fn has_vnni(&self) -> bool {
        self.avx512_vnni || self.avx_vnni || self.amx_int8
    }

    /// The features, as `/proc/cpuinfo` names them: "avx2 avx512_vnni", or "none".
    pub fn flags(&self) -> String {
        let flags: Vec<&str> = [
            (self.avx2, "avx2"),
            (self.avx512_vnni, "avx512_vnni"),
            (self.avx_vnni, "avx_vnni"),
            (self.avx512_bf16, "avx512_bf16"),
            (self.amx_int8, "amx_int8"),
            (self.amx_bf16, "amx_bf16"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        if flags.is_empty() {
            "none".into()
        } else {
            flags.join(" ")
        }
    }
}

impl std::fmt::Display for CpuFeatures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if self.amx_int8 {
            "AMX"
        } else if self.has_vnni() {
            "VNNI"
        } else {
            "no VNNI"
        };
        write!(f, "{} ({kind})", self.flags())
    }
}

#[cfg(target_arch = "x86_64")]
fn detect() -> CpuFeatures {
    use std::arch::x86_64::__cpuid_count;
    // AMX detection is not stable in `is_x86_feature_detected!`: CPUID leaf 7, EDX bits 25 (AMX-INT8) and 22
    // (AMX-BF16), with the OS enabling tile state (XCR0 bits 17 and 18) as the kernels require.
    // CPUID exists on every x86-64 CPU; a leaf the CPU lacks reads as zeros.
    let leaf7 = __cpuid_count(7, 0);
    let amx_int8_cpu = leaf7.edx & (1 << 25) != 0;
    let amx_bf16_cpu = leaf7.edx & (1 << 22) != 0;
    let amx_os = std::arch::is_x86_feature_detected!("xsave") && {
        // SAFETY: XGETBV is available when the OS enabled XSAVE (checked above).
        let xcr0 = unsafe { std::arch::x86_64::_xgetbv(0) };
        xcr0 & (0b11 << 17) == 0b11 << 17
    };
    CpuFeatures {
        avx2: std::arch::is_x86_feature_detected!("avx2"),
        avx512_vnni: std::arch::is_x86_feature_detected!("avx512vnni"),
        avx_vnni: std::arch::is_x86_feature_detected!("avxvnni"),
        amx_int8: amx_int8_cpu && amx_os,
        amx_bf16: amx_bf16_cpu && amx_os,
        avx512_bf16: std::arch::is_x86_feature_detected!("avx512bf16"),
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> CpuFeatures {
    CpuFeatures::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_name_each_feature_and_vnni_is_any_of_three() {
        let avx2 = CpuFeatures {
            avx2: true,
            ..Default::default()
        };
        assert_eq!(avx2.flags(), "avx2");
        assert!(!avx2.has_vnni());
        assert_eq!(avx2.to_string(), "avx2 (no VNNI)");
        for vnni in [
            CpuFeatures {
                avx512_vnni: true,
                ..avx2
            },
            CpuFeatures {
                avx_vnni: true,
                ..avx2
            },
            CpuFeatures {
                amx_int8: true,
                ..avx2
            },
        ] {
            assert!(vnni.has_vnni(), "{vnni}");
        }
        let sapphire_rapids = CpuFeatures {
            avx512_vnni: true,
            avx_vnni: true,
            avx512_bf16: true,
            amx_int8: true,
            amx_bf16: true,
            ..avx2
        };
        assert_eq!(
            sapphire_rapids.to_string(),
            "avx2 avx512_vnni avx_vnni avx512_bf16 amx_int8 amx_bf16 (AMX)"
        );
        assert_eq!(CpuFeatures::default().flags(), "none");
    }

    #[test]
    fn detection_agrees_with_the_standard_library_on_avx2() {
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            CpuFeatures::detect().avx2,
            std::arch::is_x86_feature_detected!("avx2")
        );
    }
}
