// CShadow: the few lines of C shadow context needs on the host side.
// Seccomp user-notification constants and structs (linux/seccomp.h), the
// fork-and-exec step that installs a filter between fork and exec (no Swift
// may run in a forked child of a multithreaded process), and fixed-arity
// wrappers for variadic calls. Policy lives in Swift (Sources/Shadow).
#ifndef CSHADOW_H
#define CSHADOW_H

#include <sys/ioctl.h>
#include <linux/seccomp.h>
#include <linux/filter.h>
#include <linux/audit.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <stdint.h>

// Linux 6.6 added synchronous wake-ups for the notifying task
// (include/uapi/linux/seccomp.h: `#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
// (1UL << 0)` and `SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)`).
// Debian 12's linux-libc-dev (6.1) lacks both.
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif
#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif

// Values of function-like macros, so Swift can see them.
static const uint32_t CSHADOW_RET_USER_NOTIF = SECCOMP_RET_USER_NOTIF;
static const uint32_t CSHADOW_RET_ALLOW = SECCOMP_RET_ALLOW;
static const uint32_t CSHADOW_RET_KILL_PROCESS = SECCOMP_RET_KILL_PROCESS;
static const uint32_t CSHADOW_RET_ERRNO = SECCOMP_RET_ERRNO;
static const uint32_t CSHADOW_AUDIT_ARCH_X86_64 = AUDIT_ARCH_X86_64;
static const uint32_t CSHADOW_USER_NOTIF_FLAG_CONTINUE = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
static const uint32_t CSHADOW_ADDFD_FLAG_SETFD = SECCOMP_ADDFD_FLAG_SETFD;
static const uint64_t CSHADOW_USER_NOTIF_FD_SYNC_WAKE_UP = SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP;
static const unsigned long CSHADOW_IOCTL_NOTIF_RECV = SECCOMP_IOCTL_NOTIF_RECV;
static const unsigned long CSHADOW_IOCTL_NOTIF_SEND = SECCOMP_IOCTL_NOTIF_SEND;
static const unsigned long CSHADOW_IOCTL_NOTIF_ID_VALID = SECCOMP_IOCTL_NOTIF_ID_VALID;
static const unsigned long CSHADOW_IOCTL_NOTIF_ADDFD = SECCOMP_IOCTL_NOTIF_ADDFD;
static const unsigned long CSHADOW_IOCTL_NOTIF_SET_FLAGS = SECCOMP_IOCTL_NOTIF_SET_FLAGS;

/// Receives one notification into `*notif` (zeroed first, as the kernel
/// requires). Returns 0 or -errno.
int cshadow_notif_recv(int listener, struct seccomp_notif *notif);
/// Sends a response. Returns 0 or -errno (ENOENT: the task is gone).
int cshadow_notif_send(int listener, const struct seccomp_notif_resp *resp);
/// 0 if notification `id` is still pending, else -errno (ENOENT).
int cshadow_notif_id_valid(int listener, uint64_t id);
/// Installs `srcfd` in the notifying task; returns its fd number or -errno.
int cshadow_notif_addfd(int listener, const struct seccomp_notif_addfd *addfd);
/// Sets listener flags (SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP). 0 or -errno.
int cshadow_notif_set_flags(int listener, uint64_t flags);

/// What cshadow_spawn_filtered did. On failure `stage` names the step and
/// `error` holds its errno.
struct cshadow_spawn_result {
    int pid;          // the child's pid, or -1
    int listener_fd;  // the seccomp listener (CLOEXEC) in this process, or -1
    int pidfd;        // a pidfd for the child (CLOEXEC), or -1
    int error;        // errno of the failed step, 0 on success
    int stage;        // CSHADOW_STAGE_*
};

enum {
    CSHADOW_STAGE_NONE = 0,
    CSHADOW_STAGE_SOCKETPAIR = 1,
    CSHADOW_STAGE_PIPE = 2,
    CSHADOW_STAGE_FORK = 3,
    CSHADOW_STAGE_NO_NEW_PRIVS = 4,
    CSHADOW_STAGE_PERSONALITY = 5,
    CSHADOW_STAGE_RLIMIT = 6,
    CSHADOW_STAGE_SECCOMP = 7,
    CSHADOW_STAGE_SEND_LISTENER = 8,
    CSHADOW_STAGE_EXEC = 9,
    CSHADOW_STAGE_RECV_LISTENER = 10,
    CSHADOW_STAGE_PIDFD = 11,
    CSHADOW_STAGE_STDIO = 12,
};

/// fork; in the child: PR_SET_NO_NEW_PRIVS, personality(ADDR_NO_RANDOMIZE) if
/// `no_randomize`, RLIMIT_NOFILE soft limit raised to at least `min_nofile`
/// (bounded by the hard limit) so fds in the reserved range can be installed,
/// the filter with SECCOMP_FILTER_FLAG_NEW_LISTENER, the listener sent to the
/// parent over a socketpair (SCM_RIGHTS) and closed, then execve(path).
/// The filter must not trap sendmsg, close (of small fds), write, execve or
/// exit_group: those run after it is installed.
/// An exec failure is reported through a CLOEXEC pipe (stage EXEC, errno);
/// the child is then reaped here. Only async-signal-safe calls in the child.
/// `stdio[i]` ≥ 0 replaces the child's fd i (dup2); -1 inherits it.
/// The child leads a process group of its own (one killpg reaches all it
/// starts). `terminal` ≥ 0: a terminal whose foreground this process holds;
/// the child's group takes it over (both sides set it, so the command never
/// reads it from the background); give it back with cshadow_terminal_take.
/// `ptracer` > 0: the child names that process its ptracer
/// (prctl(PR_SET_PTRACER)) before anything else, so a supervisor that is not
/// its ancestor may still read its memory under Yama ptrace_scope 1; ignored
/// where Yama is absent.
struct cshadow_spawn_result cshadow_spawn_filtered(
    const char *path, char *const argv[], char *const envp[],
    const struct sock_filter *filter, unsigned short filter_len,
    int no_randomize, unsigned long min_nofile, const int stdio[3], int terminal,
    int ptracer);

/// Makes `group` the foreground process group of `terminal`, with SIGTTOU
/// blocked meanwhile (a background caller would otherwise be stopped).
/// Returns 0 or -errno.
int cshadow_terminal_take(int terminal, int group);

/// A measuring probe: like cshadow_spawn_filtered, but the child runs
/// `syscall(nr)` `count` times after installing the filter, then _exit(0).
/// Used to time the notification round trip.
struct cshadow_spawn_result cshadow_spawn_syscall_loop(
    const struct sock_filter *filter, unsigned short filter_len,
    long nr, unsigned long count);

/// process_vm_readv/writev of one local and one remote range. Returns bytes
/// transferred or -errno.
long cshadow_vm_read(int pid, void *local, size_t len, uint64_t remote);
long cshadow_vm_write(int pid, const void *local, size_t len, uint64_t remote);
/// process_vm_writev scattering `len` bytes from `local` over `count` remote
/// iovecs. Returns bytes transferred or -errno.
long cshadow_vm_write_scatter(int pid, const void *local, size_t len,
                              const struct iovec *remote, unsigned long count);

/// Raw syscall with six arguments: returns the kernel's result, -errno on
/// failure (not glibc's -1/errno convention).
long cshadow_raw_syscall(long nr, uint64_t a0, uint64_t a1, uint64_t a2,
                         uint64_t a3, uint64_t a4, uint64_t a5);

/// open(2) with an explicit mode (open is variadic). Returns fd or -errno.
int cshadow_open(const char *path, int flags, unsigned mode);

/// pidfd_send_signal(2) with no siginfo and no flags. Returns 0 or -errno.
int cshadow_pidfd_send_signal(int pidfd, int signal);

/// Sends one message of `len` bytes on a SOCK_SEQPACKET socket with up to
/// `nfds` fds attached (SCM_RIGHTS), MSG_NOSIGNAL. Returns bytes or -errno.
long cshadow_send_message(int sock, const void *buf, size_t len, const int *fds, int nfds);

/// Receives one message into `buf` (at most `len` bytes), with MSG_CMSG_CLOEXEC.
/// Up to `max_fds` received fds go to `fds`, their number to `*nfds`.
/// Returns the message's length (0: the peer closed), or -errno: -EMSGSIZE
/// when the message or its fds did not fit (every fd received is closed then).
long cshadow_recv_message(int sock, void *buf, size_t len, int *fds, int max_fds, int *nfds);

/// pipe2(fds, O_CLOEXEC) and accept4(sock, NULL, NULL, SOCK_CLOEXEC), which
/// Swift's Glibc module does not show: no fork on another thread can leak
/// the new fds. Return 0 / the fd, or -errno.
int cshadow_pipe_cloexec(int fds[2]);
int cshadow_accept_cloexec(int sock);

/// The peer's credentials (SO_PEERCRED) as of its connect(2). Returns 0 or -errno.
int cshadow_peer_credentials(int sock, int *pid, unsigned *uid, unsigned *gid);

/// sched_getcpu(3), and sched_getaffinity/sched_setaffinity(2) of task `tid`
/// (0: the calling thread) with a CPU mask of `size` bytes, which Swift's
/// Glibc module does not show. Return the CPU / 0, or -errno.
int cshadow_current_cpu(void);
int cshadow_get_affinity(int tid, void *mask, size_t size);
int cshadow_set_affinity(int tid, const void *mask, size_t size);

#endif
