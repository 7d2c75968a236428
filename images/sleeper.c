/* swvmm-sleeper: processes with distinctive names for the shadow tests,
 * started by /init in swvmm.mode=known-state. busybox cannot run an applet
 * under a name that is not an applet's, so this tiny static program gives
 * the tests processes whose comm and argv are both the distinctive name.
 *
 * Run as swvmm-sleeper-N it only waits. Run as swvmm-heartbeat it also keeps
 * the guest lightly busy in user mode: ten times a second it maps a fresh
 * page and touches it, a user-mode page fault. Shadow context borrows a
 * user context from such a fault (PLATFORM.md, "Finding a user context"); a
 * real guest always has some, an idle initramfs has none. One long-lived
 * process does it, so the guest's process list stays stable for the tests. */
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static int is_heartbeat(const char *name)
{
    const char *base = strrchr(name, '/');
    return strcmp(base ? base + 1 : name, "swvmm-heartbeat") == 0;
}

int main(int argc, char **argv)
{
    (void)argc;
    if (!is_heartbeat(argv[0]))
        for (;;)
            pause();
    const struct timespec tenth = { 0, 100 * 1000 * 1000 };
    for (;;) {
        volatile char *page = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (page != MAP_FAILED) {
            page[0] = 1; /* the fault */
            munmap((void *)page, 4096);
        }
        nanosleep(&tenth, 0);
    }
}
