//! Records how this `lab` binary was compiled (profile, opt-level, debug
//! assertions), so every report can say whether its latency comes from an
//! optimized build: a debug build's figures are not measurements.

fn main() {
    for (name, var) in [
        ("LAB_BUILD_PROFILE", "PROFILE"),
        ("LAB_BUILD_OPT_LEVEL", "OPT_LEVEL"),
    ] {
        let value = std::env::var(var).unwrap_or_else(|_| "unknown".into());
        println!("cargo:rustc-env={name}={value}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
