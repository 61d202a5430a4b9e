//! [`IpvsHandle`]: the generic-netlink socket that configures the kernel IPVS
//! of one network namespace, with one method per `ipvsadm` operation.
//!
//! IPVS state is per network namespace, and a netlink socket talks to the
//! namespace it was created in. So [`IpvsHandle::open`] must run on a thread
//! that is inside the director's namespace (`setns` is per thread); once
//! open, the handle keeps talking to that namespace from any thread: it is
//! `Send + Sync`, and concurrent calls are told apart by sequence number.

use std::fmt;

use neli::{
    consts::{nl::NlmF, socket::NlFamily},
    err::RouterError,
    nl::NlPayload,
    router::synchronous::{NlRouter, NlRouterReceiverHandle},
    utils::Groups,
};

use super::consts::IPVS_GENL_NAME;
use super::message::{self, DecodeError, EncodeError, IpvsMessage, Request};
use super::types::{
    Destination, DestinationEntry, IpvsInfo, IpvsTable, Service, ServiceEntry, ServiceTable,
    Timeouts,
};

/// A boxed lower-level error (neli's router and socket errors).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The operation that failed, named like the `ipvsadm` action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Opening the generic-netlink socket.
    Open,
    /// Resolving the `IPVS` family.
    ResolveFamily,
    /// `ipvsadm -A`.
    AddService,
    /// `ipvsadm -E`.
    EditService,
    /// `ipvsadm -D`.
    DeleteService,
    /// `ipvsadm -L -t|-u|-f ..`.
    GetService,
    /// `ipvsadm -L`.
    ListServices,
    /// `ipvsadm -a`.
    AddDestination,
    /// `ipvsadm -e`.
    EditDestination,
    /// `ipvsadm -d`.
    DeleteDestination,
    /// The destinations part of `ipvsadm -L`.
    ListDestinations,
    /// `ipvsadm -C`.
    Flush,
    /// `ipvsadm -Z`.
    Zero,
    /// `ipvsadm -L --timeout`.
    GetTimeouts,
    /// `ipvsadm --set`.
    SetTimeouts,
    /// The first line of `ipvsadm -L`.
    GetInfo,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Open => "open generic netlink socket",
            Op::ResolveFamily => "resolve generic netlink family IPVS",
            Op::AddService => "add service",
            Op::EditService => "edit service",
            Op::DeleteService => "delete service",
            Op::GetService => "get service",
            Op::ListServices => "list services",
            Op::AddDestination => "add destination",
            Op::EditDestination => "edit destination",
            Op::DeleteDestination => "delete destination",
            Op::ListDestinations => "list destinations of",
            Op::Flush => "flush",
            Op::Zero => "zero counters of",
            Op::GetTimeouts => "get timeouts",
            Op::SetTimeouts => "set timeouts",
            Op::GetInfo => "get info",
        })
    }
}

/// What an IPVS operation can fail with.
///
/// Kernel refusals carry the operation, the object (`target`, e.g.
/// `TCP 192.168.122.1:8080` or `172.22.35.1:8080 in TCP 192.168.122.1:8080`)
/// and, through [`IpvsError::errno`], the errno. IPVS reports every malformed
/// attribute as EINVAL and never fills the extended ack, so EINVAL cannot be
/// made more precise than "invalid".
#[derive(Debug, thiserror::Error)]
pub enum IpvsError {
    /// The generic-netlink family `IPVS` does not exist (ENOENT on resolve).
    #[error(
        "the kernel has no IPVS (generic netlink family \"IPVS\" not found): \
         load it with `modprobe ip_vs` (plus the schedulers, e.g. ip_vs_rr), \
         or run the lab with `--runner uml` (Debian package user-mode-linux)"
    )]
    NotAvailable,
    /// The netlink socket could not be created or bound.
    #[error("cannot open a generic netlink socket")]
    Socket {
        /// neli's error.
        #[source]
        source: BoxError,
    },
    /// EEXIST: the service or destination is already there.
    #[error("{op} {target}: already exists (EEXIST)")]
    AlreadyExists {
        /// The operation.
        op: Op,
        /// The object.
        target: String,
    },
    /// ESRCH (no such service) or ENOENT (no such destination).
    #[error("{op} {target}: does not exist ({})", errno_name(*errno))]
    NotFound {
        /// The operation.
        op: Op,
        /// The object.
        target: String,
        /// `ESRCH` or `ENOENT`.
        errno: i32,
    },
    /// ENOENT on NEW/SET_SERVICE: the kernel found no such scheduler.
    #[error("{op} {target}: unknown scheduler '{scheduler}' (is module ip_vs_{scheduler} loaded?)")]
    UnknownScheduler {
        /// The operation.
        op: Op,
        /// The object.
        target: String,
        /// The scheduler name asked for.
        scheduler: String,
    },
    /// EINVAL: a missing or malformed attribute, or an impossible setting
    /// (e.g. one-packet scheduling on TCP, mixed address families outside
    /// tunnel mode). Adding an IPv4 destination also gets EINVAL while the
    /// namespace has no local address at all (not even `lo` up): the kernel
    /// then has no local routing table and classifies every address as
    /// broadcast. Configure the namespace's addresses before IPVS.
    #[error("{op} {target}: rejected by the kernel as invalid (EINVAL)")]
    Invalid {
        /// The operation.
        op: Op,
        /// The object.
        target: String,
    },
    /// EPERM/EACCES: CAP_NET_ADMIN is missing in the namespace's user namespace.
    #[error("{op} {target}: permission denied ({}); IPVS needs CAP_NET_ADMIN", errno_name(*errno))]
    PermissionDenied {
        /// The operation.
        op: Op,
        /// The object.
        target: String,
        /// `EPERM` or `EACCES`.
        errno: i32,
    },
    /// Any other errno from the kernel.
    #[error("{op} {target}: refused by the kernel ({})", errno_name(source.raw_os_error().unwrap_or(0)))]
    Kernel {
        /// The operation.
        op: Op,
        /// The object.
        target: String,
        /// The errno as an I/O error (`raw_os_error()` holds it).
        #[source]
        source: std::io::Error,
    },
    /// The netlink exchange itself failed (socket, sequence, parse of headers).
    #[error("{op} {target}: netlink exchange failed")]
    Netlink {
        /// The operation.
        op: Op,
        /// The object.
        target: String,
        /// neli's router error.
        #[source]
        source: BoxError,
    },
    /// The request could not be encoded (e.g. a scheduler name too long).
    #[error("{op} {target}: cannot encode the request")]
    Encode {
        /// The operation.
        op: Op,
        /// The object.
        target: String,
        /// Why.
        #[source]
        source: EncodeError,
    },
    /// A reply could not be decoded.
    #[error("{op} {target}: cannot decode the kernel's reply")]
    Decode {
        /// The operation.
        op: Op,
        /// The object.
        target: String,
        /// Why.
        #[source]
        source: DecodeError,
    },
}

impl IpvsError {
    /// The errno the kernel answered with, if the failure was a kernel refusal.
    pub fn errno(&self) -> Option<i32> {
        match self {
            IpvsError::NotAvailable => Some(libc::ENOENT),
            IpvsError::AlreadyExists { .. } => Some(libc::EEXIST),
            IpvsError::NotFound { errno, .. } | IpvsError::PermissionDenied { errno, .. } => {
                Some(*errno)
            }
            IpvsError::UnknownScheduler { .. } => Some(libc::ENOENT),
            IpvsError::Invalid { .. } => Some(libc::EINVAL),
            IpvsError::Kernel { source, .. } => source.raw_os_error(),
            IpvsError::Socket { .. }
            | IpvsError::Netlink { .. }
            | IpvsError::Encode { .. }
            | IpvsError::Decode { .. } => None,
        }
    }

    /// The operation that failed (`None` for [`IpvsError::NotAvailable`] and
    /// [`IpvsError::Socket`], which happen while opening).
    pub fn op(&self) -> Option<Op> {
        match self {
            IpvsError::NotAvailable | IpvsError::Socket { .. } => None,
            IpvsError::AlreadyExists { op, .. }
            | IpvsError::NotFound { op, .. }
            | IpvsError::UnknownScheduler { op, .. }
            | IpvsError::Invalid { op, .. }
            | IpvsError::PermissionDenied { op, .. }
            | IpvsError::Kernel { op, .. }
            | IpvsError::Netlink { op, .. }
            | IpvsError::Encode { op, .. }
            | IpvsError::Decode { op, .. } => Some(*op),
        }
    }

    /// Maps a kernel errno (positive) for `op` on `target`.
    fn from_errno(op: Op, target: String, errno: i32, scheduler: Option<&str>) -> Self {
        match errno {
            libc::EEXIST => IpvsError::AlreadyExists { op, target },
            // NEW/SET_SERVICE answer ENOENT when the scheduler (or the
            // persistence engine) is unknown: missing services are ESRCH.
            libc::ENOENT if scheduler.is_some() => IpvsError::UnknownScheduler {
                op,
                target,
                scheduler: scheduler.unwrap_or_default().to_owned(),
            },
            libc::ESRCH | libc::ENOENT => IpvsError::NotFound { op, target, errno },
            libc::EINVAL => IpvsError::Invalid { op, target },
            libc::EPERM | libc::EACCES => IpvsError::PermissionDenied { op, target, errno },
            _ => IpvsError::Kernel {
                op,
                target,
                source: std::io::Error::from_raw_os_error(errno),
            },
        }
    }
}

/// `EEXIST`, `ESRCH`, ...: the names the messages print.
fn errno_name(errno: i32) -> String {
    match errno {
        libc::EEXIST => "EEXIST".into(),
        libc::ESRCH => "ESRCH".into(),
        libc::ENOENT => "ENOENT".into(),
        libc::EINVAL => "EINVAL".into(),
        libc::EPERM => "EPERM".into(),
        libc::EACCES => "EACCES".into(),
        libc::ERANGE => "ERANGE".into(),
        n => format!("errno {n}: {}", std::io::Error::from_raw_os_error(n)),
    }
}

/// A generic-netlink socket bound to the IPVS family of one namespace.
pub struct IpvsHandle {
    router: NlRouter,
    family: u16,
}

impl fmt::Debug for IpvsHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IpvsHandle")
            .field("family", &self.family)
            .field("pid", &self.router.pid())
            .finish()
    }
}

/// The handle may move to, and be shared with, other threads: the socket
/// stays bound to the namespace it was opened in.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<IpvsHandle>();
};

impl IpvsHandle {
    /// Opens a socket in the **calling thread's** network namespace and
    /// resolves the `IPVS` family once.
    ///
    /// Fails with [`IpvsError::NotAvailable`] when the kernel has no IPVS
    /// (module `ip_vs` not loaded, or not built).
    pub fn open() -> Result<Self, IpvsError> {
        let (router, _multicast) = NlRouter::connect(NlFamily::Generic, None, Groups::empty())
            .map_err(|e| IpvsError::Socket {
                source: Box::new(e),
            })?;
        let family = match router.resolve_genl_family(IPVS_GENL_NAME) {
            Ok(id) => id,
            Err(RouterError::Nlmsgerr(e)) if -*e.error() == libc::ENOENT => {
                return Err(IpvsError::NotAvailable);
            }
            // neli's own "not found" when the reply had no FAMILY_ID.
            Err(RouterError::Msg(_)) => return Err(IpvsError::NotAvailable),
            Err(e) => {
                return Err(IpvsError::Netlink {
                    op: Op::ResolveFamily,
                    target: IPVS_GENL_NAME.into(),
                    source: Box::new(e),
                });
            }
        };
        Ok(IpvsHandle { router, family })
    }

    /// The numeric id of the `IPVS` family in this kernel.
    pub fn family_id(&self) -> u16 {
        self.family
    }

    /// Sends `req` and collects the payloads of the reply. Changes go with
    /// `NLM_F_ACK` (without it a success sends nothing back and the receive
    /// would block forever); dumps with `NLM_F_DUMP`, whose closing DONE
    /// neli hands over as `DumpExtAck`, which is skipped.
    fn exchange(
        &self,
        op: Op,
        target: &dyn Fn() -> String,
        req: Request<'_>,
        scheduler: Option<&str>,
    ) -> Result<Vec<IpvsMessage>, IpvsError> {
        let msg = req.build().map_err(|source| IpvsError::Encode {
            op,
            target: target(),
            source,
        })?;
        let flags = if req.is_dump() {
            NlmF::DUMP
        } else if req.is_change() {
            NlmF::ACK
        } else {
            NlmF::empty()
        };
        let netlink_err = |e: BoxError| IpvsError::Netlink {
            op,
            target: target(),
            source: e,
        };
        let replies: NlRouterReceiverHandle<u16, IpvsMessage> = self
            .router
            .send(self.family, flags, NlPayload::Payload(msg))
            .map_err(|e| netlink_err(Box::new(e)))?;
        let mut out = Vec::new();
        for reply in replies {
            match reply {
                Ok(m) => {
                    if let NlPayload::Payload(p) = m.nl_payload() {
                        out.push(p.clone());
                    }
                }
                Err(RouterError::Nlmsgerr(e)) => {
                    return Err(IpvsError::from_errno(op, target(), -*e.error(), scheduler));
                }
                Err(e) => return Err(netlink_err(Box::new(e))),
            }
        }
        Ok(out)
    }

    fn change(
        &self,
        op: Op,
        target: &dyn Fn() -> String,
        req: Request<'_>,
        scheduler: Option<&str>,
    ) -> Result<(), IpvsError> {
        self.exchange(op, target, req, scheduler).map(drop)
    }

    /// Adds a virtual service. `ipvsadm -A -t VIP:PORT -s SCHED [-p T -M MASK]`.
    pub fn add_service(&self, svc: &Service) -> Result<(), IpvsError> {
        let target = || svc.to_string();
        self.change(
            Op::AddService,
            &target,
            Request::NewService(svc),
            Some(&svc.scheduler),
        )
    }

    /// Replaces scheduler, persistence and flags of an existing service.
    /// `ipvsadm -E -t VIP:PORT -s SCHED [-p T -M MASK]`.
    pub fn edit_service(&self, svc: &Service) -> Result<(), IpvsError> {
        let target = || svc.to_string();
        self.change(
            Op::EditService,
            &target,
            Request::SetService(svc),
            Some(&svc.scheduler),
        )
    }

    /// Deletes a service and its destinations. `ipvsadm -D -t VIP:PORT`.
    /// Only the identity of `svc` is used.
    pub fn delete_service(&self, svc: &Service) -> Result<(), IpvsError> {
        let target = || svc.to_string();
        self.change(Op::DeleteService, &target, Request::DelService(svc), None)
    }

    /// All services with their counters, in kernel order. `ipvsadm -Ln`
    /// without the destinations.
    pub fn services(&self) -> Result<Vec<ServiceEntry>, IpvsError> {
        let target = || "(all)".to_owned();
        self.exchange(Op::ListServices, &target, Request::DumpServices, None)?
            .iter()
            .map(|m| {
                message::parse_service(m).map_err(|source| IpvsError::Decode {
                    op: Op::ListServices,
                    target: target(),
                    source,
                })
            })
            .collect()
    }

    /// One service by identity, `None` if it does not exist (ESRCH).
    /// `ipvsadm -Ln -t VIP:PORT` without the destinations.
    pub fn service(&self, svc: &Service) -> Result<Option<ServiceEntry>, IpvsError> {
        let target = || svc.to_string();
        let replies = match self.exchange(Op::GetService, &target, Request::GetService(svc), None) {
            Ok(r) => r,
            Err(IpvsError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        match replies.first() {
            None => Ok(None),
            Some(m) => message::parse_service(m)
                .map(Some)
                .map_err(|source| IpvsError::Decode {
                    op: Op::GetService,
                    target: target(),
                    source,
                }),
        }
    }

    /// Adds a real server to a service.
    /// `ipvsadm -a -t VIP:PORT -r RIP:PORT -g|-m|-i -w W [-x U -y L]`.
    ///
    /// The namespace needs a local address first (see [`IpvsError::Invalid`]).
    pub fn add_destination(&self, svc: &Service, dest: &Destination) -> Result<(), IpvsError> {
        let target = || format!("{dest} in {svc}");
        self.change(
            Op::AddDestination,
            &target,
            Request::NewDest(svc, dest),
            None,
        )
    }

    /// Changes forwarding method, weight or thresholds of a real server.
    /// `ipvsadm -e -t VIP:PORT -r RIP:PORT -g -w W`. Weight 0 quiesces it.
    pub fn edit_destination(&self, svc: &Service, dest: &Destination) -> Result<(), IpvsError> {
        let target = || format!("{dest} in {svc}");
        self.change(
            Op::EditDestination,
            &target,
            Request::SetDest(svc, dest),
            None,
        )
    }

    /// Removes a real server. `ipvsadm -d -t VIP:PORT -r RIP:PORT`.
    /// Only the address and port of `dest` are used.
    pub fn delete_destination(&self, svc: &Service, dest: &Destination) -> Result<(), IpvsError> {
        let target = || format!("{dest} in {svc}");
        self.change(
            Op::DeleteDestination,
            &target,
            Request::DelDest(svc, dest),
            None,
        )
    }

    /// The real servers of a service with connection counts and counters,
    /// in kernel order. The destination lines of `ipvsadm -Ln -t VIP:PORT`.
    /// A missing service gives an empty list (the kernel just ends the dump).
    pub fn destinations(&self, svc: &Service) -> Result<Vec<DestinationEntry>, IpvsError> {
        let target = || svc.to_string();
        let af = message::service_family(svc);
        self.exchange(Op::ListDestinations, &target, Request::DumpDests(svc), None)?
            .iter()
            .map(|m| {
                message::parse_dest(m, af).map_err(|source| IpvsError::Decode {
                    op: Op::ListDestinations,
                    target: target(),
                    source,
                })
            })
            .collect()
    }

    /// Removes every service and destination of the namespace. `ipvsadm -C`.
    pub fn flush(&self) -> Result<(), IpvsError> {
        let target = || "(all)".to_owned();
        self.change(Op::Flush, &target, Request::Flush, None)
    }

    /// Zeroes the counters of one service (and its destinations), or of all.
    /// `ipvsadm -Z [-t VIP:PORT]`.
    pub fn zero(&self, svc: Option<&Service>) -> Result<(), IpvsError> {
        let target = || svc.map_or_else(|| "(all)".to_owned(), |s| s.to_string());
        self.change(Op::Zero, &target, Request::Zero(svc), None)
    }

    /// The connection timeouts. `ipvsadm -L --timeout`.
    pub fn timeouts(&self) -> Result<Timeouts, IpvsError> {
        let target = || "(config)".to_owned();
        let replies = self.exchange(Op::GetTimeouts, &target, Request::GetConfig, None)?;
        let m = replies.first().ok_or_else(|| IpvsError::Decode {
            op: Op::GetTimeouts,
            target: target(),
            source: DecodeError::Missing("GET_CONFIG reply"),
        })?;
        message::parse_timeouts(m).map_err(|source| IpvsError::Decode {
            op: Op::GetTimeouts,
            target: target(),
            source,
        })
    }

    /// Sets the connection timeouts; a 0 leaves that one unchanged.
    /// `ipvsadm --set TCP TCPFIN UDP`.
    pub fn set_timeouts(&self, t: &Timeouts) -> Result<(), IpvsError> {
        let target = || format!("tcp {} tcpfin {} udp {}", t.tcp, t.tcp_fin, t.udp);
        self.change(Op::SetTimeouts, &target, Request::SetConfig(t), None)
    }

    /// Version and connection-table size: the first line of `ipvsadm -Ln`,
    /// `IP Virtual Server version 1.2.1 (size=4096)`.
    pub fn info(&self) -> Result<IpvsInfo, IpvsError> {
        let target = || "(info)".to_owned();
        let replies = self.exchange(Op::GetInfo, &target, Request::GetInfo, None)?;
        let m = replies.first().ok_or_else(|| IpvsError::Decode {
            op: Op::GetInfo,
            target: target(),
            source: DecodeError::Missing("GET_INFO reply"),
        })?;
        message::parse_info(m).map_err(|source| IpvsError::Decode {
            op: Op::GetInfo,
            target: target(),
            source,
        })
    }

    /// Info, every service and every service's destinations: all that
    /// `ipvsadm -Ln` shows, for [`super::format`] or a report. Not atomic:
    /// the kernel may change between the dumps.
    pub fn table(&self) -> Result<IpvsTable, IpvsError> {
        let info = self.info()?;
        let services = self
            .services()?
            .into_iter()
            .map(|entry| {
                let destinations = self.destinations(&entry.service)?;
                Ok(ServiceTable {
                    entry,
                    destinations,
                })
            })
            .collect::<Result<_, IpvsError>>()?;
        Ok(IpvsTable { info, services })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_mapping() {
        let t = || "TCP 192.168.122.1:8080".to_owned();
        let e = IpvsError::from_errno(Op::AddService, t(), libc::EEXIST, Some("rr"));
        assert!(matches!(e, IpvsError::AlreadyExists { .. }));
        assert_eq!(
            e.to_string(),
            "add service TCP 192.168.122.1:8080: already exists (EEXIST)"
        );
        let e = IpvsError::from_errno(Op::AddService, t(), libc::ENOENT, Some("nope"));
        assert_eq!(
            e.to_string(),
            "add service TCP 192.168.122.1:8080: unknown scheduler 'nope' \
             (is module ip_vs_nope loaded?)"
        );
        assert_eq!(e.errno(), Some(libc::ENOENT));
        let e = IpvsError::from_errno(Op::DeleteService, t(), libc::ESRCH, None);
        assert_eq!(
            e.to_string(),
            "delete service TCP 192.168.122.1:8080: does not exist (ESRCH)"
        );
        let e = IpvsError::from_errno(Op::DeleteDestination, t(), libc::ENOENT, None);
        assert!(matches!(
            e,
            IpvsError::NotFound {
                errno: libc::ENOENT,
                ..
            }
        ));
        let e = IpvsError::from_errno(Op::AddService, t(), libc::EINVAL, Some("rr"));
        assert!(matches!(e, IpvsError::Invalid { .. }));
        assert_eq!(e.op(), Some(Op::AddService));
        let e = IpvsError::from_errno(Op::Flush, "(all)".into(), libc::EPERM, None);
        assert!(matches!(e, IpvsError::PermissionDenied { .. }));
        let e = IpvsError::from_errno(Op::AddDestination, t(), libc::ERANGE, None);
        assert_eq!(e.errno(), Some(libc::ERANGE));
        assert_eq!(
            e.to_string(),
            "add destination TCP 192.168.122.1:8080: refused by the kernel (ERANGE)"
        );
        assert!(
            IpvsError::NotAvailable
                .to_string()
                .contains("modprobe ip_vs")
        );
        assert!(IpvsError::NotAvailable.to_string().contains("--runner uml"));
    }
}
