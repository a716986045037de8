"""The cage a transformation function runs in: what a worker process applies to itself, after
it has loaded what it needs and before it compiles the user's source.

The export pod holds warehouse and application credentials; a function must reach none of
them. Three unprivileged kernel mechanisms, all usable by a non-root process with no
privilege escalation (the ``restricted`` Pod Security Standard):

* **Landlock** (Linux 5.13+): no file can be opened for writing, and only the folders the
  interpreter loads code from can be read. ``/etc``, ``/proc``, the credentials folder, the
  export config and the working directory cannot. From ABI 4 no TCP bind or connect either,
  from ABI 6 no signal to a process outside the sandbox and no abstract UNIX socket.
* **seccomp** (a BPF filter, with ``no_new_privs``): no socket of any family, no new process
  (``fork``, ``vfork``, ``execve``; ``clone`` only for threads), no ``ptrace`` or reading
  another process's memory, no signal to another process, no namespace, mount, keyring, BPF,
  perf or io_uring call, and the resource limits below cannot be raised again.
* **rlimits**: no file may grow (``RLIMIT_FSIZE`` 0), no core file, few descriptors, and for
  Python an address-space limit (V8 has its own heap limit).

:func:`unavailable` says why the sandbox cannot be set up on this kernel, or None; a worker that
fails to apply any part exits instead of running the function (fail closed).
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import resource
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# -- Landlock (include/uapi/linux/landlock.h) --------------------------------------------------

_LANDLOCK_CREATE_RULESET_VERSION = 1
_LANDLOCK_RULE_PATH_BENEATH = 1
_FS_EXECUTE, _FS_READ_FILE, _FS_READ_DIR = 1 << 0, 1 << 2, 1 << 3
#: Every filesystem right a Landlock ABI version knows: handled, hence denied unless granted.
_FS_RIGHTS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1}
_FS_RIGHTS_LATEST = (1 << 16) - 1  # ABI 5 added LANDLOCK_ACCESS_FS_IOCTL_DEV
_NET_BIND_TCP, _NET_CONNECT_TCP = 1, 2  # ABI 4
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1, 2  # ABI 6

# -- seccomp (include/uapi/linux/seccomp.h, filter.h, bpf_common.h) ---------------------------

_PR_GET_SECCOMP, _PR_SET_NO_NEW_PRIVS = 21, 38
_SECCOMP_SET_MODE_FILTER = 1
_SECCOMP_FILTER_FLAG_TSYNC = 1
_RET_KILL_PROCESS, _RET_ALLOW, _RET_ERRNO = 0x80000000, 0x7FFF0000, 0x00050000
_LD_W_ABS, _JEQ_K, _JGE_K, _JSET_K, _RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
_CLONE_THREAD = 0x00010000
_X32_SYSCALL_BIT = 0x40000000


@dataclass(frozen=True)
class _Arch:
    audit: int
    numbers: dict[str, int]


#: The syscalls the filter decides on, per architecture (arch/x86/entry/syscalls/syscall_64.tbl
#: and the generic table aarch64 uses, which has no fork or vfork).
# fmt: off
_ARCHES = {
    "x86_64": _Arch(
        0xC000003E,
        {
            "socket": 41, "connect": 42, "accept": 43, "bind": 49, "listen": 50,
            "socketpair": 53, "clone": 56, "fork": 57, "vfork": 58, "execve": 59, "kill": 62,
            "ptrace": 101, "personality": 135, "pivot_root": 155, "setrlimit": 160,
            "chroot": 161, "mount": 165, "umount2": 166, "tkill": 200, "tgkill": 234,
            "add_key": 248, "request_key": 249, "keyctl": 250, "unshare": 272, "accept4": 288,
            "perf_event_open": 298, "prlimit64": 302, "name_to_handle_at": 303,
            "open_by_handle_at": 304, "setns": 308, "process_vm_readv": 310,
            "process_vm_writev": 311, "seccomp": 317, "bpf": 321, "execveat": 322,
            "userfaultfd": 323, "io_uring_setup": 425, "io_uring_enter": 426,
            "io_uring_register": 427, "open_tree": 428, "move_mount": 429, "fsopen": 430,
            "fsconfig": 431, "fsmount": 432, "fspick": 433, "clone3": 435, "pidfd_getfd": 438,
            "landlock_create_ruleset": 444, "landlock_add_rule": 445,
            "landlock_restrict_self": 446,
        },
    ),
    "aarch64": _Arch(
        0xC00000B7,
        {
            "umount2": 39, "mount": 40, "pivot_root": 41, "chroot": 51, "personality": 92,
            "unshare": 97, "ptrace": 117, "kill": 129, "tkill": 130, "tgkill": 131,
            "setrlimit": 164, "socket": 198, "socketpair": 199, "bind": 200, "listen": 201,
            "accept": 202, "connect": 203, "add_key": 217, "request_key": 218, "keyctl": 219,
            "clone": 220, "execve": 221, "perf_event_open": 241, "accept4": 242,
            "prlimit64": 261, "name_to_handle_at": 264, "open_by_handle_at": 265,
            "setns": 268, "process_vm_readv": 270, "process_vm_writev": 271, "seccomp": 277,
            "bpf": 280, "execveat": 281, "userfaultfd": 282, "io_uring_setup": 425,
            "io_uring_enter": 426, "io_uring_register": 427, "open_tree": 428,
            "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
            "clone3": 435, "pidfd_getfd": 438, "landlock_create_ruleset": 444,
            "landlock_add_rule": 445, "landlock_restrict_self": 446,
        },
    ),
}
#: Always refused with EPERM.
_DENIED = (
    "socket", "socketpair", "connect", "bind", "listen", "accept", "accept4", "fork", "vfork",
    "execve", "execveat", "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd",
    "personality", "pivot_root", "chroot", "mount", "umount2", "unshare", "setns", "add_key",
    "request_key", "keyctl", "bpf", "perf_event_open", "userfaultfd", "io_uring_setup",
    "io_uring_enter", "io_uring_register", "open_tree", "move_mount", "fsopen", "fsconfig",
    "fsmount", "fspick", "setrlimit", "tkill", "seccomp", "landlock_create_ruleset",
    "landlock_add_rule", "landlock_restrict_self",
)
# fmt: on


class SandboxError(OSError):
    """The sandbox could not be set up; the function must not run."""


@dataclass(frozen=True)
class Limits:
    """What one worker may use. ``address_space`` None leaves it unlimited (V8 reserves far
    more address space than it uses, and bounds its heap itself)."""

    address_space: int | None
    open_files: int = 64


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    libc.prctl.restype = ctypes.c_int
    return libc


def _landlock_abi(libc: ctypes.CDLL) -> int:
    version = libc.syscall(
        444, None, ctypes.c_size_t(0), ctypes.c_uint32(_LANDLOCK_CREATE_RULESET_VERSION)
    )
    return int(version) if version > 0 else -ctypes.get_errno()


def unavailable() -> str | None:
    """Why functions cannot be sandboxed here, or None when they can."""
    machine = platform.machine()
    if machine not in _ARCHES:
        return f"the sandbox supports x86_64 and aarch64 only, not {machine}"
    if not hasattr(os, "sched_getaffinity") or platform.system() != "Linux":
        return "the sandbox needs Linux"
    libc = _libc()
    if libc.prctl(_PR_GET_SECCOMP, 0, 0, 0, 0) < 0:
        return "this kernel has no seccomp"
    abi = _landlock_abi(libc)
    if abi < 0:
        reason = {
            errno.ENOSYS: "this kernel has no Landlock (Linux 5.13 or later is needed)",
            errno.EOPNOTSUPP: "Landlock is not enabled in this kernel (add it to the lsm= "
            "boot parameter)",
            errno.EPERM: "the container's seccomp profile refuses Landlock",
        }
        return reason.get(-abi, f"Landlock cannot be used: {os.strerror(-abi)}")
    return None


def confine(readable: Iterable[str], limits: Limits) -> None:
    """Apply the rlimits, Landlock and seccomp to this process, for good; threads started
    afterwards inherit all three (threads started before get the rlimits and seccomp only).
    ``readable``: the folders and files that may be read. Raises :class:`SandboxError` if any
    part fails."""
    libc = _libc()
    _set_limits(limits)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise SandboxError(ctypes.get_errno(), "no_new_privs cannot be set")
    _restrict_files(libc, readable)
    _filter_syscalls(libc)


def _set_limits(limits: Limits) -> None:
    for limit, value in (
        (resource.RLIMIT_FSIZE, 0),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_NOFILE, limits.open_files),
        (resource.RLIMIT_AS, limits.address_space),
    ):
        if value is not None:
            resource.setrlimit(limit, (value, value))


def _restrict_files(libc: ctypes.CDLL, readable: Iterable[str]) -> None:
    abi = _landlock_abi(libc)
    if abi < 0:
        raise SandboxError(-abi, "Landlock is not available")
    fs_rights = _FS_RIGHTS_BY_ABI.get(abi, _FS_RIGHTS_LATEST)
    attr = struct.pack("=Q", fs_rights)
    if abi >= 4:
        attr += struct.pack("=Q", _NET_BIND_TCP | _NET_CONNECT_TCP)
    if abi >= 6:
        attr += struct.pack("=Q", _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL)
    ruleset = libc.syscall(444, attr, ctypes.c_size_t(len(attr)), ctypes.c_uint32(0))
    if ruleset < 0:
        raise SandboxError(ctypes.get_errno(), "the Landlock ruleset cannot be created")
    try:
        for folder in sorted(set(readable)):
            try:
                fd = os.open(folder, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # a folder this interpreter does not have
            try:
                rights = _FS_READ_FILE
                if os.path.isdir(folder):
                    rights |= _FS_EXECUTE | _FS_READ_DIR
                rule = struct.pack("=Qi", rights, fd)
                if libc.syscall(445, ruleset, _LANDLOCK_RULE_PATH_BENEATH, rule, 0) != 0:
                    raise SandboxError(ctypes.get_errno(), f"cannot let the sandbox read {folder}")
            finally:
                os.close(fd)
        if libc.syscall(446, ruleset, 0) != 0:
            raise SandboxError(ctypes.get_errno(), "Landlock cannot be enforced")
    finally:
        os.close(ruleset)


def _filter_syscalls(libc: ctypes.CDLL) -> None:
    arch = _ARCHES.get(platform.machine())
    if arch is None:
        raise SandboxError(errno.ENOTSUP, f"no seccomp filter for {platform.machine()}")
    program = _program(arch, os.getpid())
    instructions = b"".join(struct.pack("=HBBI", *insn) for insn in program)
    buffer = ctypes.create_string_buffer(instructions)
    fprog = struct.pack("=HxxxxxxQ", len(program), ctypes.addressof(buffer))
    syscall = arch.numbers["seccomp"]
    if libc.syscall(syscall, _SECCOMP_SET_MODE_FILTER, _SECCOMP_FILTER_FLAG_TSYNC, fprog) != 0:
        raise SandboxError(ctypes.get_errno(), "the seccomp filter cannot be installed")


_Insn = tuple[int, int, int, int]
_ARG0, _ARG2 = 16, 32  # offsets of the low 32 bits of args[0] and args[2] in seccomp_data


def _program(arch: _Arch, pid: int) -> Sequence[_Insn]:
    """The BPF program: refuse what :data:`_DENIED` names, let ``clone`` start threads only,
    ``kill``/``tgkill`` reach this process only, ``prlimit64`` read limits only, make ``clone3``
    look absent (the C library then starts threads with ``clone``), allow the rest."""
    numbers = arch.numbers
    # Jump targets are labels, resolved below into the relative (forward) offsets BPF wants.
    code: list[tuple[int, int | str, int | str, int]] = [
        (_LD_W_ABS, 0, 0, 4),  # seccomp_data.arch
        (_JEQ_K, 1, 0, arch.audit),
        (_RET_K, 0, 0, _RET_KILL_PROCESS),
        (_LD_W_ABS, 0, 0, 0),  # seccomp_data.nr
    ]
    if arch.audit == _ARCHES["x86_64"].audit:
        code.append((_JGE_K, "deny", 0, _X32_SYSCALL_BIT))
    code += [(_JEQ_K, "deny", 0, numbers[name]) for name in _DENIED if name in numbers]
    code += [
        (_JEQ_K, "clone", 0, numbers["clone"]),
        (_JEQ_K, "absent", 0, numbers["clone3"]),
        (_JEQ_K, "self", 0, numbers["kill"]),
        (_JEQ_K, "self", 0, numbers["tgkill"]),
        (_JEQ_K, "read_limits", 0, numbers["prlimit64"]),
        (_RET_K, 0, 0, _RET_ALLOW),
    ]
    labels: dict[str, int] = {}
    tail: list[tuple[str | None, tuple[int, int | str, int | str, int]]] = [
        ("clone", (_LD_W_ABS, 0, 0, _ARG0)),
        (None, (_JSET_K, "allow", "deny", _CLONE_THREAD)),
        ("self", (_LD_W_ABS, 0, 0, _ARG0)),
        (None, (_JEQ_K, "allow", "deny", pid)),
        ("read_limits", (_LD_W_ABS, 0, 0, _ARG2)),
        (None, (_JEQ_K, 0, "deny", 0)),
        (None, (_LD_W_ABS, 0, 0, _ARG2 + 4)),
        (None, (_JEQ_K, "allow", "deny", 0)),
        ("allow", (_RET_K, 0, 0, _RET_ALLOW)),
        ("deny", (_RET_K, 0, 0, _RET_ERRNO | errno.EPERM)),
        ("absent", (_RET_K, 0, 0, _RET_ERRNO | errno.ENOSYS)),
    ]
    for label, insn in tail:
        if label is not None:
            labels[label] = len(code)
        code.append(insn)
    resolved: list[_Insn] = []
    for index, (op, jt, jf, k) in enumerate(code):

        def offset(target: int | str, index: int = index) -> int:
            return labels[target] - index - 1 if isinstance(target, str) else target

        resolved.append((op, offset(jt), offset(jf), k))
    return resolved
