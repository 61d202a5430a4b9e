//! Which User-Mode Linux kernel the lab boots, and where it came from.
//!
//! Three kinds are known, tried in this order:
//! 1. `IPVSLAB_UML_KERNEL`: an explicit choice always wins (it is how a user,
//!    or a test, points the lab at another kernel);
//! 2. the lab's own build, made by `make deps` (`scripts/build-uml-kernel.sh`)
//!    from Debian's kernel source with `kernel/uml.config`: IPVS and every
//!    scheduler built in, time-travel, nftables `ip`/`inet`/`bridge`. It boots on
//!    AMD and on Intel with AMX, where Debian's packaged 6.1 and 6.12 panic;
//! 3. the distribution's `linux.uml` (Debian's `user-mode-linux`), whose IPVS
//!    comes as modules under `/usr/lib/uml/modules/<release>`.
//!
//! A kernel is paired only with the modules of its own release (asked from the
//! binary itself with `--version`), never with another release's tree.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::RunnerError;

/// Environment variable that overrides which UML kernel is booted.
pub const KERNEL_ENV: &str = "IPVSLAB_UML_KERNEL";
/// Environment variable that overrides the lab's cache directory.
pub const CACHE_ENV: &str = "IPVSLAB_CACHE_DIR";
/// The distribution's kernel when `linux.uml` is not on `PATH`.
const DISTRIBUTION_KERNEL: &str = "/usr/bin/linux.uml";
/// Where Debian's `user-mode-linux` keeps the modules of each release.
pub const MODULES_ROOT: &str = "/usr/lib/uml/modules";
/// The metadata file the kernel build writes beside the binary.
pub const BUILD_FILE: &str = "build.json";

/// Where the booted kernel came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KernelOrigin {
    /// Named by `IPVSLAB_UML_KERNEL`.
    Override,
    /// The lab's own build (`make deps`).
    Lab,
    /// The distribution's `user-mode-linux` package.
    Distribution,
}

impl KernelOrigin {
    /// The name used in reports and in the guest's environment.
    pub fn as_str(self) -> &'static str {
        match self {
            KernelOrigin::Override => "override",
            KernelOrigin::Lab => "lab",
            KernelOrigin::Distribution => "distribution",
        }
    }

    /// The inverse of [`KernelOrigin::as_str`].
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Override, Self::Lab, Self::Distribution]
            .into_iter()
            .find(|o| o.as_str() == name)
    }

    /// A short phrase for people.
    pub fn describe(self) -> &'static str {
        match self {
            KernelOrigin::Override => "named by IPVSLAB_UML_KERNEL",
            KernelOrigin::Lab => "the lab's own build",
            KernelOrigin::Distribution => "the distribution's user-mode-linux package",
        }
    }
}

/// What `scripts/build-uml-kernel.sh` records about a build (`build.json`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LabKernelBuild {
    /// The Debian source package, e.g. `linux-source-7.2`.
    pub source_package: String,
    /// The version that was built, e.g. `7.2.13-1`.
    pub source_version: String,
    /// The version `kernel/SOURCE_VERSION` pinned (differs when the archive
    /// no longer served it and the newest of the series was taken).
    pub pinned_version: String,
    /// `uname -r` of the built kernel.
    pub release: String,
    /// The first 12 hex digits of the SHA-256 of `kernel/uml.config`.
    pub config_sha256_12: String,
    /// When it was built (RFC 3339).
    pub built_at: String,
    /// How long the build took.
    pub build_seconds: u64,
}

/// A UML kernel the lab can boot.
#[derive(Debug, Clone)]
pub struct UmlKernel {
    /// The kernel binary.
    pub binary: PathBuf,
    /// Its release (`uname -r` inside the guest).
    pub release: String,
    /// Its module tree, when IPVS comes as modules; `None` when the kernel has
    /// IPVS built in (the lab's own build).
    pub modules: Option<PathBuf>,
    /// Where it came from.
    pub origin: KernelOrigin,
    /// The build record, for the lab's own kernel.
    pub build: Option<LabKernelBuild>,
}

/// The lab's cache: `$IPVSLAB_CACHE_DIR`, else `$XDG_CACHE_HOME/ipvs-lab`,
/// else `$HOME/.cache/ipvs-lab` (what the kernel build script uses too).
pub fn cache_dir() -> Option<PathBuf> {
    let nonempty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(dir) = nonempty(CACHE_ENV) {
        return Some(PathBuf::from(dir));
    }
    if let Some(xdg) = nonempty("XDG_CACHE_HOME") {
        return Some(PathBuf::from(xdg).join("ipvs-lab"));
    }
    nonempty("HOME").map(|h| PathBuf::from(h).join(".cache/ipvs-lab"))
}

/// The lab's own kernel build, `<cache>/uml/current/linux`.
pub fn lab_kernel_path() -> Option<PathBuf> {
    cache_dir().map(|c| c.join("uml/current/linux"))
}

/// Reads the `build.json` that sits beside a kernel binary, if any.
pub fn read_build(binary: &Path) -> Option<LabKernelBuild> {
    let text = std::fs::read(binary.parent()?.join(BUILD_FILE)).ok()?;
    serde_json::from_slice(&text).ok()
}

/// The first file called `name` in a directory of `$PATH`.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// Asks a UML binary for its release (`linux --version` prints it and exits
/// before booting). `None` for anything that does not answer like UML.
pub fn release_of(binary: &Path) -> Option<String> {
    let out = Command::new(binary)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let release = text.lines().next()?.trim();
    let plausible = out.status.success()
        && !release.is_empty()
        && release.starts_with(|c: char| c.is_ascii_digit())
        && !release.contains(char::is_whitespace);
    plausible.then(|| release.to_owned())
}

/// Whether UML's `--help` text offers the `time-travel` parameter (a line
/// of its own, as `time-travel` or `time-travel=...`).
pub fn lists_time_travel(help: &str) -> bool {
    help.lines()
        .map(str::trim)
        .any(|l| l == "time-travel" || l.starts_with("time-travel="))
}

impl UmlKernel {
    /// Finds the kernel to boot: `$IPVSLAB_UML_KERNEL`, else the lab's own
    /// build, else the distribution's `linux.uml`.
    pub fn locate() -> Result<Self, RunnerError> {
        if let Some(path) = std::env::var_os(KERNEL_ENV).filter(|v| !v.is_empty()) {
            return Self::at(PathBuf::from(path), KernelOrigin::Override);
        }
        if let Some(lab) = lab_kernel_path().filter(|p| p.is_file()) {
            return Self::at(lab, KernelOrigin::Lab);
        }
        let distribution =
            find_on_path("linux.uml").unwrap_or_else(|| PathBuf::from(DISTRIBUTION_KERNEL));
        if distribution.is_file() {
            return Self::at(distribution, KernelOrigin::Distribution);
        }
        Err(RunnerError::NoIpvsNoUml {
            kernel: super::kernel_release(),
            uml_hint: format!(
                "{} (the lab's own build) or {DISTRIBUTION_KERNEL}",
                lab_kernel_path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "~/.cache/ipvs-lab/uml/current/linux".into())
            ),
        })
    }

    /// The kernel at `binary`, with its release and modules.
    fn at(binary: PathBuf, origin: KernelOrigin) -> Result<Self, RunnerError> {
        let meta = std::fs::metadata(&binary).map_err(|source| RunnerError::BadKernel {
            kernel: binary.clone(),
            reason: format!("cannot read it: {source}"),
        })?;
        if !meta.is_file() || meta.len() == 0 {
            return Err(RunnerError::BadKernel {
                kernel: binary,
                reason: if meta.is_file() {
                    "it is an empty file".into()
                } else {
                    "it is not a file".into()
                },
            });
        }
        let build = read_build(&binary);
        let release = build
            .as_ref()
            .map(|b| b.release.clone())
            .or_else(|| release_of(&binary))
            .unwrap_or_else(|| "unknown".into());
        let own_modules = Path::new(MODULES_ROOT).join(&release);
        let modules = own_modules
            .join("kernel/net/netfilter/ipvs")
            .is_dir()
            .then_some(own_modules);
        if origin == KernelOrigin::Distribution && modules.is_none() {
            // Debian's package ships IPVS only as modules, for its own release.
            return Err(RunnerError::UmlModulesMissing {
                kernel: binary,
                modules: Path::new(MODULES_ROOT).join(&release),
            });
        }
        Ok(Self {
            binary,
            release,
            modules,
            origin,
            build,
        })
    }

    /// Whether this kernel was built with CONFIG_UML_TIME_TRAVEL_SUPPORT.
    /// UML's `--help` lists every boot parameter compiled in and exits
    /// without booting, so the kernel itself answers (no config file needed).
    pub fn supports_time_travel(&self) -> bool {
        std::process::Command::new(&self.binary)
            .arg("--help")
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .map(|out| lists_time_travel(&String::from_utf8_lossy(&out.stdout)))
            .unwrap_or(false)
    }

    /// One line for people: binary, release, origin.
    pub fn describe(&self) -> String {
        let how = match (&self.build, &self.modules) {
            (Some(b), _) => format!(
                "{}, {} {} with kernel/uml.config {}",
                self.origin.describe(),
                b.source_package,
                b.source_version,
                b.config_sha256_12
            ),
            (None, Some(m)) => format!(
                "{}, IPVS modules in {}",
                self.origin.describe(),
                m.display()
            ),
            (None, None) => format!("{}, IPVS expected built in", self.origin.describe()),
        };
        format!(
            "{} (release {}; {how})",
            self.binary.display(),
            self.release
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_travel_is_read_from_umls_help() {
        // Lines as 7.2's `linux --help` prints them.
        let with = "time-travel-start=<nanoseconds>\n    Configure the clock.\n\ntime-travel\n    \
                    This option just enables basic time travel mode\ntime-travel=inf-cpu\n";
        assert!(lists_time_travel(with));
        let without = "mem=<Amount of desired ram>\n    This controls how much memory\n\
                       time-travel-start=<nanoseconds>\n    only the start\n";
        assert!(!lists_time_travel(without));
        assert!(!lists_time_travel(""));
    }

    #[test]
    fn a_build_record_is_read_from_beside_the_binary() {
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("linux");
        std::fs::write(&binary, b"x").unwrap();
        assert_eq!(read_build(&binary), None);
        std::fs::write(
            dir.path().join(BUILD_FILE),
            r#"{"source_package":"linux-source-7.2","source_version":"7.2.13-1",
                "pinned_version":"7.2.13-1","release":"7.2.13","config_sha256_12":"0123456789ab",
                "built_at":"2026-12-01T00:00:00Z","build_seconds":480}"#,
        )
        .unwrap();
        let build = read_build(&binary).expect("build.json");
        assert_eq!(build.release, "7.2.13");
        assert_eq!(build.source_version, "7.2.13-1");
    }

    #[test]
    fn something_that_is_not_uml_has_no_release() {
        // /bin/false exits non-zero; /bin/echo prints "--version", not a release.
        assert_eq!(release_of(Path::new("/bin/false")), None);
        assert_eq!(release_of(Path::new("/bin/echo")), None);
        assert_eq!(release_of(Path::new("/nonexistent/linux")), None);
    }

    #[test]
    fn an_empty_kernel_file_is_refused_with_its_reason() {
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("linux");
        std::fs::write(&binary, b"").unwrap();
        let err = UmlKernel::at(binary, KernelOrigin::Override).unwrap_err();
        assert!(err.to_string().contains("empty file"), "{err}");
    }
}
