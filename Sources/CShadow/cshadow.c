#define _GNU_SOURCE
#include "cshadow.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static int neg_errno(long r) { return r < 0 ? -errno : (int)r; }

int cshadow_notif_recv(int listener, struct seccomp_notif *notif) {
    // The kernel rejects a non-zeroed buffer with EINVAL (seccomp_unotify(2)).
    memset(notif, 0, sizeof *notif);
    return neg_errno(ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, notif));
}

int cshadow_notif_send(int listener, const struct seccomp_notif_resp *resp) {
    return neg_errno(ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, resp));
}

int cshadow_notif_id_valid(int listener, uint64_t id) {
    return neg_errno(ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id));
}

int cshadow_notif_addfd(int listener, const struct seccomp_notif_addfd *addfd) {
    return neg_errno(ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, addfd));
}

int cshadow_notif_set_flags(int listener, uint64_t flags) {
    // The kernel takes the flags by value as the ioctl argument.
    return neg_errno(ioctl(listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS, flags));
}

// ---- child side (async-signal-safe only) ----

struct child_report { int stage; int error; };

static void child_fail(int report_fd, int stage) {
    struct child_report r = { stage, errno };
    // Nothing useful to do if this write fails: the parent sees EOF and a
    // dead child.
    ssize_t ignored = write(report_fd, &r, sizeof r);
    (void)ignored;
    _exit(127);
}

static int send_fd(int sock, int fd) {
    char byte = 'L';
    return cshadow_send_message(sock, &byte, 1, &fd, 1) == 1 ? 0 : -1;
}

// Prepares the child up to and including the filter; returns the listener.
static int child_install(int report_fd, int sock,
                         const struct sock_filter *filter, unsigned short len,
                         int no_randomize, unsigned long min_nofile, int ptracer) {
    // Before the filter, which may trap prctl. EINVAL (no Yama in this
    // kernel) needs no ptracer; nothing else can go wrong worth stopping for.
    if (ptracer > 0) prctl(PR_SET_PTRACER, (unsigned long)ptracer, 0, 0, 0);
    // A forked thread keeps the parent's signal mask; the inspector should
    // start like a normal process.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);

    // Required to install a filter without CAP_SYS_ADMIN (seccomp(2)).
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) child_fail(report_fd, CSHADOW_STAGE_NO_NEW_PRIVS);
    if (no_randomize) {
        int current = personality(0xffffffff);
        if (current == -1 || personality((unsigned long)current | ADDR_NO_RANDOMIZE) == -1)
            child_fail(report_fd, CSHADOW_STAGE_PERSONALITY);
    }
    if (min_nofile > 0) {
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) != 0) child_fail(report_fd, CSHADOW_STAGE_RLIMIT);
        if (rl.rlim_cur < min_nofile) {
            if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < min_nofile) {
                errno = EMFILE;
                child_fail(report_fd, CSHADOW_STAGE_RLIMIT);
            }
            rl.rlim_cur = min_nofile;
            if (setrlimit(RLIMIT_NOFILE, &rl) != 0) child_fail(report_fd, CSHADOW_STAGE_RLIMIT);
        }
    }
    struct sock_fprog prog = { len, (struct sock_filter *)filter };
    long listener = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                            SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
    if (listener < 0) child_fail(report_fd, CSHADOW_STAGE_SECCOMP);
    // From here on only calls the filter lets through: sendmsg, write,
    // execve, exit_group. The listener is CLOEXEC (kernel/seccomp.c), so it
    // disappears at exec without a close(2).
    if (send_fd(sock, (int)listener) != 0) child_fail(report_fd, CSHADOW_STAGE_SEND_LISTENER);
    return (int)listener;
}

// ---- parent side ----

static int recv_fd(int sock) {
    char byte;
    int fd = -1, count = 0;
    long n = cshadow_recv_message(sock, &byte, 1, &fd, 1, &count);
    if (n <= 0 || count != 1) {
        if (count == 1) close(fd);
        errno = n < 0 ? (int)-n : EPROTO;
        return -1;
    }
    return fd;
}

static struct cshadow_spawn_result failed(int stage, int error) {
    struct cshadow_spawn_result r = { -1, -1, -1, error, stage };
    return r;
}

static void reap(pid_t pid) {
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
}

int cshadow_terminal_take(int terminal, int group) {
    sigset_t ttou, old;
    sigemptyset(&ttou);
    sigaddset(&ttou, SIGTTOU);
    sigprocmask(SIG_BLOCK, &ttou, &old);
    int rc = tcsetpgrp(terminal, group) == 0 ? 0 : -errno;
    sigprocmask(SIG_SETMASK, &old, NULL);
    return rc;
}

// A failed start: the terminal (if taken) back to this process's group, the child reaped.
static void undo_start(pid_t pid, int terminal) {
    if (terminal >= 0) cshadow_terminal_take(terminal, getpgrp());
    reap(pid);
}

// mode 0: execve(path, argv, envp); mode 1: syscall(nr) loop.
static struct cshadow_spawn_result spawn(int mode, const char *path,
                                         char *const argv[], char *const envp[],
                                         const struct sock_filter *filter,
                                         unsigned short filter_len, int no_randomize,
                                         unsigned long min_nofile, long nr,
                                         unsigned long count, const int *stdio, int terminal,
                                         int ptracer) {
    int sv[2], ep[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return failed(CSHADOW_STAGE_SOCKETPAIR, errno);
    if (pipe2(ep, O_CLOEXEC) != 0) {
        int e = errno; close(sv[0]); close(sv[1]);
        return failed(CSHADOW_STAGE_PIPE, e);
    }
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(sv[0]); close(sv[1]); close(ep[0]); close(ep[1]);
        return failed(CSHADOW_STAGE_FORK, e);
    }
    if (pid == 0) {
        // A group of its own, so one killpg reaches everything it starts;
        // the parent does the same below, whichever runs first.
        setpgid(0, 0);
        if (terminal >= 0) cshadow_terminal_take(terminal, getpid());
        close(sv[0]);
        close(ep[0]);
        for (int i = 0; stdio != NULL && i < 3; i++) {
            if (stdio[i] >= 0 && stdio[i] != i && dup2(stdio[i], i) < 0)
                child_fail(ep[1], CSHADOW_STAGE_STDIO);
        }
        child_install(ep[1], sv[1], filter, filter_len, no_randomize, min_nofile, ptracer);
        if (mode == 1) {
            // No exec closes the report pipe here: close it, or the parent
            // waits on it forever while the loop waits on the parent.
            close(ep[1]);
            for (unsigned long i = 0; i < count; i++) syscall(nr);
            _exit(0);
        }
        execve(path, argv, envp);
        child_fail(ep[1], CSHADOW_STAGE_EXEC);
    }
    // EACCES once the child has exec'd: it set its group itself by then.
    setpgid(pid, pid);
    if (terminal >= 0) cshadow_terminal_take(terminal, pid);
    close(sv[1]);
    close(ep[1]);
    int listener = recv_fd(sv[0]);
    int recv_errno = errno;
    close(sv[0]);
    struct child_report report = {0, 0};
    ssize_t n;
    do { n = read(ep[0], &report, sizeof report); } while (n < 0 && errno == EINTR);
    close(ep[0]);
    if (n == (ssize_t)sizeof report) {
        if (listener >= 0) close(listener);
        undo_start(pid, terminal);
        return failed(report.stage, report.error);
    }
    if (listener < 0) {
        undo_start(pid, terminal);
        return failed(CSHADOW_STAGE_RECV_LISTENER, recv_errno);
    }
    long pidfd = syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0) {
        int e = errno;
        kill(pid, SIGKILL);
        close(listener);
        undo_start(pid, terminal);
        return failed(CSHADOW_STAGE_PIDFD, e);
    }
    // pidfd_open(2): the fd is CLOEXEC.
    struct cshadow_spawn_result r = { pid, listener, (int)pidfd, 0, CSHADOW_STAGE_NONE };
    return r;
}

struct cshadow_spawn_result cshadow_spawn_filtered(
    const char *path, char *const argv[], char *const envp[],
    const struct sock_filter *filter, unsigned short filter_len,
    int no_randomize, unsigned long min_nofile, const int stdio[3], int terminal,
    int ptracer) {
    return spawn(0, path, argv, envp, filter, filter_len, no_randomize, min_nofile, 0, 0, stdio, terminal, ptracer);
}

struct cshadow_spawn_result cshadow_spawn_syscall_loop(
    const struct sock_filter *filter, unsigned short filter_len,
    long nr, unsigned long count) {
    return spawn(1, NULL, NULL, NULL, filter, filter_len, 0, 0, nr, count, NULL, -1, 0);
}

long cshadow_vm_read(int pid, void *local, size_t len, uint64_t remote) {
    struct iovec l = { local, len };
    struct iovec r = { (void *)(uintptr_t)remote, len };
    ssize_t n = process_vm_readv(pid, &l, 1, &r, 1, 0);
    return n < 0 ? -errno : n;
}

long cshadow_vm_write(int pid, const void *local, size_t len, uint64_t remote) {
    struct iovec l = { (void *)local, len };
    struct iovec r = { (void *)(uintptr_t)remote, len };
    ssize_t n = process_vm_writev(pid, &l, 1, &r, 1, 0);
    return n < 0 ? -errno : n;
}

long cshadow_vm_write_scatter(int pid, const void *local, size_t len,
                              const struct iovec *remote, unsigned long count) {
    struct iovec l = { (void *)local, len };
    ssize_t n = process_vm_writev(pid, &l, 1, remote, count, 0);
    return n < 0 ? -errno : n;
}

long cshadow_raw_syscall(long nr, uint64_t a0, uint64_t a1, uint64_t a2,
                         uint64_t a3, uint64_t a4, uint64_t a5) {
    long r = syscall(nr, a0, a1, a2, a3, a4, a5);
    return r == -1 ? -errno : r;
}

int cshadow_open(const char *path, int flags, unsigned mode) {
    int fd = open(path, flags, mode);
    return fd < 0 ? -errno : fd;
}

int cshadow_pidfd_send_signal(int pidfd, int signal) {
    return syscall(SYS_pidfd_send_signal, pidfd, signal, NULL, 0) == 0 ? 0 : -errno;
}

// Room for the most fds one control message carries (the inspector's listener and pidfd).
#define CSHADOW_MAX_MESSAGE_FDS 4

long cshadow_send_message(int sock, const void *buf, size_t len, const int *fds, int nfds) {
    if (nfds < 0 || nfds > CSHADOW_MAX_MESSAGE_FDS) return -EINVAL;
    struct iovec iov = { (void *)buf, len };
    union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int) * CSHADOW_MAX_MESSAGE_FDS)]; } control;
    memset(&control, 0, sizeof control);
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (nfds > 0) {
        msg.msg_control = control.buf;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
    }
    ssize_t n;
    do { n = sendmsg(sock, &msg, MSG_NOSIGNAL); } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

long cshadow_recv_message(int sock, void *buf, size_t len, int *fds, int max_fds, int *nfds) {
    *nfds = 0;
    struct iovec iov = { buf, len };
    union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int) * CSHADOW_MAX_MESSAGE_FDS)]; } control;
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    ssize_t n;
    do { n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC); } while (n < 0 && errno == EINTR);
    if (n < 0) return -errno;
    int received[CSHADOW_MAX_MESSAGE_FDS];
    int count = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t bytes = c->cmsg_len - CMSG_LEN(0);
        for (size_t i = 0; i < bytes / sizeof(int) && count < CSHADOW_MAX_MESSAGE_FDS; i++)
            memcpy(&received[count++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
    }
    if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || count > max_fds) {
        for (int i = 0; i < count; i++) close(received[i]);
        return -EMSGSIZE;
    }
    for (int i = 0; i < count; i++) fds[i] = received[i];
    *nfds = count;
    return n;
}

int cshadow_peer_credentials(int sock, int *pid, unsigned *uid, unsigned *gid) {
    struct ucred cred;
    socklen_t size = sizeof cred;
    if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &size) != 0) return -errno;
    *pid = cred.pid;
    *uid = cred.uid;
    *gid = cred.gid;
    return 0;
}

int cshadow_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC) == 0 ? 0 : -errno;
}

int cshadow_accept_cloexec(int sock) {
    int fd = accept4(sock, NULL, NULL, SOCK_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int cshadow_current_cpu(void) { return neg_errno(sched_getcpu()); }

int cshadow_get_affinity(int tid, void *mask, size_t size) {
    return neg_errno(sched_getaffinity(tid, size, (cpu_set_t *)mask));
}

int cshadow_set_affinity(int tid, const void *mask, size_t size) {
    return neg_errno(sched_setaffinity(tid, size, (const cpu_set_t *)mask));
}
