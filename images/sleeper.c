/* swvmm-sleeper: a process that only waits, started under distinctive names
 * (swvmm-sleeper-1, ...) by /init in swvmm.mode=known-state. busybox cannot
 * run an applet under a name that is not an applet's, so this tiny static
 * program gives the shadow tests a process whose comm and argv are both the
 * distinctive name. */
#include <unistd.h>

int main(void)
{
    for (;;)
        pause();
}
