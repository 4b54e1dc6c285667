//! Background priority for a thread whose work may wait: CPU `nice` 19 and the idle I/O
//! scheduling class, so the chunk writers of a Pi's SD card always go first.
//!
//! Both apply to the calling thread only (Linux keeps them per thread). The idle I/O class
//! is honoured by the BFQ and mq-deadline schedulers; with `none` (some eMMC setups) it is
//! accepted but has no effect, which is why callers also pace their own I/O. A sandbox that
//! forbids the calls (systemd's `@resources` filter) makes them fail with `EPERM`: the thread
//! then runs at normal priority, and the caller's pacing still bounds its share.

/// `IOPRIO_WHO_PROCESS` (a thread id) and `IOPRIO_CLASS_IDLE` from linux/ioprio.h; libc
/// has no binding for `ioprio_set`.
const IOPRIO_WHO_PROCESS: libc::c_int = 1;
const IOPRIO_CLASS_IDLE: libc::c_int = 3;
const IOPRIO_CLASS_SHIFT: libc::c_int = 13;

/// What [`lower_this_thread`] achieved.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Lowered {
    /// `nice` 19 applied.
    pub cpu: bool,
    /// The idle I/O class applied.
    pub io: bool,
}

/// Puts the calling thread at the lowest CPU and I/O priority; says which calls worked.
pub fn lower_this_thread() -> Lowered {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    // SAFETY: setpriority on our own thread id.
    let cpu = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 19) } == 0;
    // SAFETY: the ioprio_set system call with integer arguments, on our own thread id.
    let io = unsafe {
        libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, tid, IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT)
    } == 0;
    Lowered { cpu, io }
}

/// The calling thread's I/O priority class (for tests).
pub fn io_class_of_this_thread() -> Option<libc::c_int> {
    // SAFETY: the ioprio_get system call with integer arguments, on our own thread id.
    let v = unsafe { libc::syscall(libc::SYS_ioprio_get, IOPRIO_WHO_PROCESS, libc::gettid()) };
    (v >= 0).then_some((v as libc::c_int) >> IOPRIO_CLASS_SHIFT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowers_only_the_calling_thread() {
        let before = io_class_of_this_thread();
        let t = std::thread::spawn(|| {
            (lower_this_thread(), io_class_of_this_thread(), unsafe {
                // SAFETY: getpriority on our own thread id.
                libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t)
            })
        });
        let (lowered, class, nice) = t.join().unwrap();
        assert_eq!(lowered, Lowered { cpu: true, io: true });
        assert_eq!((class, nice), (Some(IOPRIO_CLASS_IDLE), 19));
        assert_eq!(io_class_of_this_thread(), before, "other threads keep their priority");
    }
}
