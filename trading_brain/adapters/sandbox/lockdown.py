"""OS lockdown of the sandbox worker (trusted code; stdlib, ctypes and pyseccomp only).

Contract:
- ``enter_netns()`` runs FIRST, while the process is still single-threaded (importing polars starts
  threads and then ``unshare`` fails with EINVAL): ``CLONE_NEWNET`` as root, else
  ``CLONE_NEWUSER | CLONE_NEWNET``.
- ``die_with_parent(host_pid)`` runs before everything else and again right after the uid drop
  (a credential change clears the setting): PR_SET_PDEATHSIG(SIGKILL), then the parent must
  still be ``host_pid`` (else the host died in between: exit). The host spawns workers from one
  long-lived thread (``process.py``), since the signal follows the spawning THREAD's exit.
- ``Lockdown(layers).early(read_paths)`` runs right after, still single-threaded:
  PR_SET_NO_NEW_PRIVS and Landlock (read-only on ``read_paths``, nothing writable, no execute,
  TCP denied where ABI >= 4, signal/abstract-unix scoping where ABI >= 6;
  ``report["landlock_scopes"]`` names the scopes applied, empty on older ABIs). Both are
  per-thread and inherited, and Landlock ABI < 8 cannot be applied to threads that already
  exist (polars starts its pool at import).
- ``Lockdown.late(limits)`` runs after every module the strategy may use is imported: rlimits,
  uid/gid drop to 65534 (root only), PR_SET_DUMPABLE 0, then seccomp with TSYNC (``_seccomp``).
  The worker talks to its host over inherited PIPES only, so seccomp denies every socket call:
  ``socket`` (any family), ``socketpair``, ``connect``, ``bind``, ``listen``, ``accept*``,
  ``sendto``/``sendmsg``/``sendmmsg`` (a path socket such as ``/dev/log`` is outside the network
  namespace and Landlock ABI < 9 does not cover it), and the ``prctl`` options that would undo
  the lockdown (parent-death signal, dumpable, ptracer, subreaper, mm).
- Nothing here raises for a missing kernel feature: the returned report (``protocol.LayerReport``
  fields) says which layers are active and the host decides (fail closed).
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import signal
import struct
from typing import Any

_libc = ctypes.CDLL(None, use_errno=True)

CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
CLONE_THREAD = 0x00010000
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_SECCOMP = 22
PR_SET_MM = 35
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_SET_PTRACER = 0x59616D61
PRCTL_DENY = (PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_SECCOMP, PR_SET_MM,
              PR_SET_CHILD_SUBREAPER, PR_SET_PTRACER)
NOBODY = 65534

# Landlock (include/uapi/linux/landlock.h); the syscall numbers are the same on every arch.
SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_ADD_RULE, SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1
FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1, 2, 4, 8
FS_ABI1 = (1 << 13) - 1  # EXECUTE .. MAKE_SYM
FS_REFER, FS_TRUNCATE, FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
NET_BIND_TCP, NET_CONNECT_TCP = 1, 2
SCOPE_ABSTRACT_UNIX, SCOPE_SIGNAL = 1, 2
SCOPE_ABI = 6


def landlock_scopes(abi: int) -> list[str]:
    """The Landlock scopes a ruleset of this ABI applies (``[]`` before ABI 6)."""
    return ["abstract_unix_socket", "signal"] if abi >= SCOPE_ABI else []


def _check(ret: int, what: str) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def enter_netns() -> None:
    """Move into a fresh network namespace (only a down loopback inside); raises OSError."""
    flags = CLONE_NEWNET if os.geteuid() == 0 else CLONE_NEWUSER | CLONE_NEWNET
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 if unsupported."""
    ret = _libc.syscall(
        ctypes.c_long(SYS_LANDLOCK_CREATE_RULESET),
        ctypes.c_void_p(None),
        ctypes.c_size_t(0),
        ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION),
    )
    return max(int(ret), 0)


def _fs_rights(abi: int) -> int:
    rights = FS_ABI1
    if abi >= 2:
        rights |= FS_REFER
    if abi >= 3:
        rights |= FS_TRUNCATE
    if abi >= 5:
        rights |= FS_IOCTL_DEV
    return rights


def _landlock_ruleset(abi: int, read_paths: list[str]) -> int:
    """Create the ruleset fd: read-only beneath ``read_paths``, everything else denied."""
    handled = _fs_rights(abi)
    attr = struct.pack("<Q", handled)
    if abi >= 4:
        attr += struct.pack("<Q", NET_BIND_TCP | NET_CONNECT_TCP)
    if abi >= SCOPE_ABI:
        attr += struct.pack("<Q", SCOPE_ABSTRACT_UNIX | SCOPE_SIGNAL)
    buf = ctypes.create_string_buffer(attr, len(attr))
    fd = _check(
        _libc.syscall(
            ctypes.c_long(SYS_LANDLOCK_CREATE_RULESET),
            buf,
            ctypes.c_size_t(len(attr)),
            ctypes.c_uint32(0),
        ),
        "landlock_create_ruleset",
    )
    for path in dict.fromkeys(read_paths):
        _landlock_allow_read(fd, path, handled)
    return fd


def _landlock_allow_read(ruleset_fd: int, path: str, handled: int) -> None:
    try:
        pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # a path that does not exist grants nothing
    try:
        is_dir = os.path.isdir(path)
        access = (FS_READ_FILE | FS_READ_DIR) if is_dir else FS_READ_FILE
        rule = ctypes.create_string_buffer(struct.pack("<Qi", access & handled, pfd), 12)
        _check(
            _libc.syscall(
                ctypes.c_long(SYS_LANDLOCK_ADD_RULE),
                ctypes.c_int(ruleset_fd),
                ctypes.c_int(LANDLOCK_RULE_PATH_BENEATH),
                rule,
                ctypes.c_uint32(0),
            ),
            f"landlock_add_rule {path}",
        )
    finally:
        os.close(pfd)


def _set_rlimits(cpu_s: int, as_bytes: int, nofile: int) -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    resource.setrlimit(resource.RLIMIT_AS, (as_bytes, as_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _drop_uid() -> None:
    os.setgroups([])
    os.setresgid(NOBODY, NOBODY, NOBODY)
    os.setresuid(NOBODY, NOBODY, NOBODY)


def _prctl(option: int, arg: int) -> None:
    zero = ctypes.c_ulong(0)
    _check(_libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg), zero, zero, zero), "prctl")


def die_with_parent(host_pid: int | None) -> None:
    """SIGKILL this process when its parent dies; exit now if the parent is already gone.

    ``host_pid`` None skips the parent check (a worker started by hand).
    """
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if host_pid is not None and os.getppid() != host_pid:
        os._exit(70)  # the host died before the signal was armed: nobody will read our replies


# Syscalls denied outright (EPERM); unknown names on an older libseccomp are skipped.
DENY = (
    "execve execveat fork vfork ptrace process_vm_readv process_vm_writev kcmp mount umount2 "
    "unshare setns pivot_root chroot bpf io_uring_setup io_uring_enter io_uring_register keyctl "
    "add_key request_key memfd_create memfd_secret perf_event_open userfaultfd kexec_load "
    "kexec_file_load init_module finit_module delete_module reboot swapon swapoff pidfd_open "
    "pidfd_send_signal pidfd_getfd socket socketpair connect bind listen accept accept4 sendto "
    "sendmsg sendmmsg tkill setuid setgid "
    "setreuid setregid setresuid setresgid setgroups setfsuid setfsgid unlink unlinkat rename "
    "renameat renameat2 chmod fchmod fchmodat chown fchown lchown fchownat link linkat symlink "
    "symlinkat mknod mknodat mkdir mkdirat rmdir truncate creat open_by_handle_at "
    "name_to_handle_at process_madvise move_pages migrate_pages acct quotactl syslog personality "
    "fanotify_init mq_open clock_settime settimeofday adjtimex ioperm iopl fsopen fsmount fspick "
    "move_mount open_tree mount_setattr uselib vhangup"
).split()
WRITE_FLAGS = (os.O_WRONLY, os.O_RDWR, os.O_CREAT, os.O_TRUNC, os.O_APPEND)


def _seccomp() -> None:
    """Default-allow filter denying exec/fork/sockets/ptrace/namespaces/writes, foreign signals and
    the prctl options that would undo the lockdown."""
    import pyseccomp as sc

    eperm, pid = sc.ERRNO(errno.EPERM), os.getpid()
    flt = sc.SyscallFilter(sc.ALLOW)
    flt.set_attr(sc.Attr.CTL_TSYNC, 1)  # every existing thread (polars' pool) gets the filter

    def rule(action: int, name: str, *args: Any) -> None:
        try:
            flt.add_rule(action, name, *args)
        except (OSError, ValueError, RuntimeError):
            pass  # syscall unknown to this libseccomp/arch

    for name in DENY:
        rule(eperm, name)
    rule(sc.ERRNO(errno.ENOSYS), "clone3")  # glibc falls back to clone, filtered below
    rule(sc.ERRNO(errno.ENOSYS), "openat2")
    rule(eperm, "clone", sc.Arg(0, sc.MASKED_EQ, CLONE_THREAD, 0))
    for option in PRCTL_DENY:
        rule(eperm, "prctl", sc.Arg(0, sc.EQ, option))
    for name in ("kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo"):
        rule(eperm, name, sc.Arg(0, sc.NE, pid))
    rule(eperm, "prlimit64", sc.Arg(0, sc.NE, 0))
    for flag in WRITE_FLAGS:
        rule(sc.ERRNO(errno.EACCES), "open", sc.Arg(1, sc.MASKED_EQ, flag, flag))
        rule(sc.ERRNO(errno.EACCES), "openat", sc.Arg(2, sc.MASKED_EQ, flag, flag))
    flt.load()


class Lockdown:
    """Applies the enabled layers in two phases and keeps the report of what is enforced.

    ``early(read_paths)`` runs while the process is single-threaded (threads created later inherit
    no_new_privs and the Landlock domain; Landlock ABI < 8 cannot reach existing threads);
    ``late(limits)`` runs after the imports: rlimits, uid drop (glibc applies it to every thread),
    PR_SET_DUMPABLE 0 and seccomp synchronised to all threads (TSYNC).
    """

    def __init__(self, layers: Any, host_pid: int | None = None) -> None:
        self.layers, self.host_pid = layers, host_pid
        self.report: dict[str, Any] = {
            "netns": False,
            "rlimits": False,
            "uid_drop": False,
            "no_new_privs": False,
            "landlock_abi": 0,
            "landlock_scopes": [],
            "seccomp": False,
            "pdeathsig": False,
            "errors": {},
        }

    def _attempt(self, name: str, fn: Any) -> bool:
        try:
            fn()
            return True
        except Exception as e:  # report, never crash: the host decides
            self.report["errors"][name] = f"{type(e).__name__}: {e}"[:500]
            return False

    def early(self, read_paths: list[str]) -> None:
        """Network namespace, no_new_privs and Landlock (call while single-threaded)."""
        r = self.report
        if self.layers.netns:
            r["netns"] = self._attempt("netns", enter_netns)
        if self.layers.no_new_privs:
            r["no_new_privs"] = self._attempt(
                "no_new_privs", lambda: _prctl(PR_SET_NO_NEW_PRIVS, 1)
            )
        abi = landlock_abi() if self.layers.landlock else 0
        if abi:
            if not r["no_new_privs"] and os.geteuid() != 0:
                r["errors"]["landlock"] = "needs no_new_privs"
            elif self._attempt("landlock", lambda: _landlock_enforce(abi, read_paths)):
                r["landlock_abi"], r["landlock_scopes"] = abi, landlock_scopes(abi)
        elif self.layers.landlock:
            r["errors"]["landlock"] = "not supported by this kernel"

    def late(self, limits: Any) -> dict[str, Any]:
        """rlimits, uid drop, non-dumpable, seccomp; returns the report."""
        r = self.report
        if self.layers.rlimits:
            r["rlimits"] = self._attempt(
                "rlimits", lambda: _set_rlimits(limits.cpu_s, limits.as_bytes, limits.nofile)
            )
        if self.layers.uid_drop and os.geteuid() == 0:
            r["uid_drop"] = self._attempt("uid_drop", _drop_uid)
        # a uid change clears PR_SET_PDEATHSIG: arm it again (seccomp then forbids changing it)
        r["pdeathsig"] = self._attempt("pdeathsig", lambda: die_with_parent(self.host_pid))
        self._attempt("dumpable", lambda: _prctl(PR_SET_DUMPABLE, 0))
        if self.layers.seccomp:
            r["seccomp"] = self._attempt("seccomp", _seccomp)
        r["uid"] = os.getuid()
        return r


def _landlock_enforce(abi: int, read_paths: list[str]) -> None:
    fd = _landlock_ruleset(abi, read_paths)
    try:
        _check(
            _libc.syscall(
                ctypes.c_long(SYS_LANDLOCK_RESTRICT_SELF), ctypes.c_int(fd), ctypes.c_uint32(0)
            ),
            "landlock_restrict_self",
        )
    finally:
        os.close(fd)
